"""Channel-wise autoregressive entropy model (ChARM, Minnen & Singh 2020, Sec. 3 and Fig. 2).

y is split into S slices along channels. Slice i's mean and scale come from the hyperprior features and the
already decoded slices 0..i-1; after rounding, a latent residual prediction (LRP) 0.5 * tanh(.) corrects the
quantisation error. One slice loop (`slice_loop`) drives the training forward pass, the encoder and the decoder;
they differ only in how a slice is quantised (noise / rounding / range decoding).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.layers import Conv

Array = jax.Array


class SliceTransform(nn.Module):
  """conv3x3 - LeakyReLU - conv3x3 - LeakyReLU - conv3x3 to `out` channels."""

  hidden: tuple[int, ...]
  out: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    for i, h in enumerate(self.hidden):
      x = nn.leaky_relu(Conv(h, 3, name=f"conv{i}")(x), 0.01)
    return Conv(self.out, 3, name=f"conv{len(self.hidden)}")(x)


def support(hyper: Array, decoded: list[Array], max_support: int) -> Array:
  """Concatenates the hyperprior features with the decoded slices a slice may condition on."""
  prev = decoded if max_support < 0 else decoded[:max_support]
  return jnp.concatenate([hyper] + list(prev), axis=-1)


def lrp(refined: Array) -> Array:
  """Latent residual prediction squashed to (-1/2, 1/2)."""
  return 0.5 * jnp.tanh(refined)


def slice_loop(num_slices: int, slice_params: Callable[[int, tuple], Any], code_slice: Callable[[int, Any], Any],
               refine: Callable[[int, tuple, Any], Array]) -> list[Array]:
  """ChARM's loop (Minnen & Singh 2020, Fig. 2): slice i is parametrised by the slices decoded before it.

  slice_params(i, decoded) -> entropy parameters of slice i (mean, scale, ...);
  code_slice(i, params) -> the quantised slice (rounded, noisy, or range-decoded symbols);
  refine(i, decoded, quantised) -> the decoded slice (quantised + latent residual prediction).
  Returns the decoded slices; y_hat is their concatenation.
  """
  decoded: list[Array] = []
  for i in range(num_slices):
    q = code_slice(i, slice_params(i, tuple(decoded)))
    decoded.append(refine(i, tuple(decoded), q))
  return decoded
