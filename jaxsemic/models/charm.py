"""Channel-wise autoregressive entropy model (ChARM, Minnen & Singh 2020, Sec. 3 and Fig. 2).

y is split into S slices along channels. Slice i's mean and scale come from the hyperprior features and the
already decoded slices 0..i-1; after rounding, a latent residual prediction (LRP) 0.5 * tanh(.) corrects the
quantisation error. The same per-slice functions run at training, at encoding and at decoding.
"""

from __future__ import annotations

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
