"""Minnen, Ballé, Toderici 2018, "Joint autoregressive and hierarchical priors for learned image compression".

`mbt2018-mean`: the hyperprior predicts a mean and a scale per latent (Sec. 2). `mbt2018`: additionally a
5x5 masked convolution over the already decoded latents (the context model, Fig. 2 and Sec. 3); its
parameters are merged with the hyperprior's by 1x1 convolutions. Decoding is sequential: here one jitted
`lax.scan` step per diagonal of latent positions (`zoo.context_coding`), never a Python loop over pixels.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.entropy.gaussian import gaussian_likelihood
from jaxsemic.entropy.quantization import add_uniform_noise
from jaxsemic.layers import Conv, TransposedConv, conv2d
from jaxsemic.zoo.bmshj2018 import GDNAnalysis, GDNSynthesis, HyperAnalysis, ScaleHyperprior

Array = jax.Array
CONTEXT_KERNEL = 5
# The submodules whose parameters a coding step reads (`context_params_many`): passing only these to the jitted
# step makes its per-call argument handling ~0.08 ms shorter (a few parameter arrays instead of all of them).
CODING_SUBMODULES = ("context_prediction", "entropy_parameters")


def _lrelu(x: Array) -> Array:
  return nn.leaky_relu(x, 0.01)


class MeanScaleSynthesis(nn.Module):
  """h_s: deconv5x5/2 (N->M), LeakyReLU, deconv5x5/2 (M->3M/2), LeakyReLU, conv3x3 (->2M): scales, means."""

  M: int

  @nn.compact
  def __call__(self, z: Array) -> Array:
    h = _lrelu(TransposedConv(self.M, 5, 2, name="deconv0")(z))
    h = _lrelu(TransposedConv(self.M * 3 // 2, 5, 2, name="deconv1")(h))
    return Conv(self.M * 2, 3, 1, name="conv2")(h)


def causal_mask(k: int) -> np.ndarray:
  """PixelCNN mask 'A' [k, k, 1, 1]: taps above, and left of the centre on its row (not the centre)."""
  m = np.ones((k, k), np.float32)
  m[k // 2, k // 2:] = 0.0
  m[k // 2 + 1:, :] = 0.0
  return m[:, :, None, None]


def causal_taps(k: int) -> np.ndarray:
  """Indices (row-major over the k x k window) of the (k*k - 1)/2 taps `causal_mask` keeps."""
  return np.flatnonzero(causal_mask(k)[:, :, 0, 0].ravel())


class MaskedConv(nn.Module):
  """k x k convolution that sees only causal neighbours (CompressAI's `MaskedConv2d`, mask type 'A')."""

  in_features: int
  features: int
  kernel_size: int = CONTEXT_KERNEL

  def setup(self):
    k = self.kernel_size
    self.kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, self.in_features, self.features))
    self.bias = self.param("bias", nn.initializers.zeros, (self.features,))

  def masked_kernel(self) -> Array:
    return self.kernel * causal_mask(self.kernel_size)

  def __call__(self, y_hat: Array) -> Array:
    """Context features of every position, [B,h,w,in] -> [B,h,w,features]."""
    p = self.kernel_size // 2
    out = conv2d(y_hat, self.masked_kernel().astype(y_hat.dtype), 1, ((p, p), (p, p)))
    return out + self.bias.astype(y_hat.dtype)

  def at(self, window: Array) -> Array:
    """Context features of one position from its k x k neighbourhood [k,k,in] -> [features]."""
    return jnp.einsum("hwi,hwio->o", window, self.masked_kernel().astype(window.dtype)) + self.bias

  def causal_matrix(self) -> Array:
    """The kernel's (k*k - 1)/2 causal taps as one [taps*in, features] matrix (what `at_many` multiplies by)."""
    kern = self.kernel.reshape(self.kernel_size ** 2, self.in_features, self.features)
    return kern[causal_taps(self.kernel_size)].reshape(-1, self.features)

  def at_many(self, windows: Array, matrix: Array) -> Array:
    """Context features of B positions from their neighbourhoods [B,k,k,in] -> [B,features], causal taps only.

    One [B, taps*in] x [taps*in, features] matmul with `causal_matrix()` (half the work of the full window);
    the matrix is an argument so that a caller evaluating many batches gathers it once. Rows are independent:
    a position's numbers depend on its row only, not on the other rows.
    """
    x = windows.reshape(windows.shape[0], self.kernel_size ** 2, -1)[:, causal_taps(self.kernel_size)]
    x = x.reshape(windows.shape[0], -1)
    return x @ matrix.astype(x.dtype) + self.bias


class EntropyParameters(nn.Module):
  """Three 1x1 convs 4M -> 10M/3 -> 8M/3 -> 2M with LeakyReLU: (hyper params, context) -> (scales, means)."""

  M: int

  @nn.compact
  def __call__(self, h: Array) -> Array:
    m = self.M
    h = _lrelu(Conv(m * 10 // 3, 1, name="conv0")(h))
    h = _lrelu(Conv(m * 8 // 3, 1, name="conv1")(h))
    return Conv(m * 6 // 3, 1, name="conv2")(h)

  def rows(self, h: Array) -> Array:
    """The same three layers on rows [B, 4M] as matrix products (.jsc version 3's coding step).

    A 1x1 conv over B positions is a [B, 4M] x [4M, 10M/3] product; at a diagonal's few rows XLA:CPU runs the
    product ~2x faster than the conv (16 x 768 -> 640: 0.07 vs 0.16 ms), with other float rounding (~1e-6), so
    the two forms belong to different format versions.
    """
    params = self.variables["params"]
    for i in range(3):
      layer = params[f"conv{i}"]["conv"]
      kernel = layer["kernel"]
      h = h @ kernel.reshape(kernel.shape[-2:]).astype(h.dtype) + layer["bias"].astype(h.dtype)
      h = _lrelu(h) if i < 2 else h
    return h


def split_scales_means(params: Array) -> tuple[Array, Array]:
  """CompressAI's `chunk(2, 1)`: the first M channels are scales, the last M means."""
  scales, means = jnp.split(params, 2, axis=-1)
  return scales, means


class MeanScaleHyperprior(ScaleHyperprior):
  """mbt2018-mean: y ~ N(mu, sigma^2) with (sigma, mu) = h_s(z_hat); z = h_a(y) (no absolute value)."""

  def make_transforms(self):
    c = self.cfg
    return GDNAnalysis(c.N, c.M), GDNSynthesis(c.N), HyperAnalysis(c.N, leaky=True), MeanScaleSynthesis(c.M)

  def hyper_analysis(self, y: Array) -> Array:
    return self.h_a(y)

  def gaussian_params(self, z_hat: Array) -> tuple[Array, Array]:
    return split_scales_means(self.h_s(z_hat))


class JointAutoregressive(MeanScaleHyperprior):
  """mbt2018: mean-scale hyperprior + masked-conv context model; cheng2020 swaps the four transforms."""

  def setup(self):
    super().setup()
    self.context_prediction = MaskedConv(self.cfg.M, 2 * self.cfg.M)
    self.entropy_parameters = EntropyParameters(self.cfg.M)

  def hyper_synthesis(self, z_hat: Array) -> Array:
    """The hyperprior's 2M parameter channels at y's resolution."""
    return self.h_s(z_hat)

  def context_params(self, hyper: Array, y_hat: Array) -> tuple[Array, Array]:
    """(scales, means) of every position, given the whole (causally used) y_hat."""
    ctx = self.context_prediction(y_hat)
    return split_scales_means(self.entropy_parameters(jnp.concatenate([hyper, ctx], axis=-1)))

  def context_params_at(self, hyper_px: Array, window: Array) -> tuple[Array, Array]:
    """(scales, means) [M] of one position from its hyper params [2M] and y_hat neighbourhood [k,k,M]."""
    ctx = self.context_prediction.at(window)
    h = jnp.concatenate([hyper_px, ctx])[None, None, None, :]
    return split_scales_means(self.entropy_parameters(h)[0, 0, 0])

  def context_matrix(self) -> Array:
    """The context model's causal taps as one matrix (`MaskedConv.causal_matrix`), for `context_params_many`."""
    return self.context_prediction.causal_matrix()

  def context_params_many(self, hyper_px: Array, windows: Array, matrix: Array, entropy_rows: bool = True
                          ) -> tuple[Array, Array]:
    """(scales, means) [B,M] of B positions from their hyper params [B,2M], y_hat neighbourhoods [B,k,k,M]
    and `context_matrix()`; the entropy parameters as matrix products over the rows (.jsc version 3) or as 1x1
    convs (version 2)."""
    ctx = self.context_prediction.at_many(windows, matrix)
    h = jnp.concatenate([hyper_px, ctx], axis=-1)
    if entropy_rows:
      return split_scales_means(self.entropy_parameters.rows(h))
    return split_scales_means(self.entropy_parameters(h[:, None, None, :])[:, 0, 0])

  def __call__(self, x: Array, text: Array | None = None, train: bool = False) -> dict:
    """As CompressAI's forward: the context and g_s see round(y); the rate uses round(y - mu) + mu."""
    del text
    y = self.analysis(x)
    z_hat, z_lik = self.entropy_bottleneck(self.hyper_analysis(y), train)
    hyper = self.hyper_synthesis(z_hat)
    y_hat = add_uniform_noise(y, self.make_rng("noise")) if train else jnp.round(y)
    scales, means = self.context_params(hyper, y_hat)
    y_q = y_hat if train else jnp.round(y - means) + means
    y_lik = gaussian_likelihood(y_q, means, scales)
    return {"x_hat": self.synthesis(y_hat), "y": y, "y_hat": y_hat, "likelihoods": {"y": y_lik, "z": z_lik}}
