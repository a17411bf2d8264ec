"""Ballé, Minnen, Singh, Hwang, Johnston 2018, "Variational image compression with a scale hyperprior".

CompressAI's `bmshj2018-factorized` (Sec. 2, the factorized-prior baseline) and `bmshj2018-hyperprior`
(Sec. 3, Fig. 4: zero-mean Gaussian y with scales from h_s(z_hat)); GDN transforms with 5x5 stride-2
convolutions. Layer names follow CompressAI's Sequential indices (`g_a.0` -> `g_a/conv0`, `g_a.1` -> `g_a/gdn0`).
"""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.entropy.gaussian import gaussian_likelihood
from jaxsemic.entropy.quantization import add_uniform_noise
from jaxsemic.layers import GDN, Conv, TransposedConv
from jaxsemic.zoo.config import ZooConfig
from jaxsemic.zoo.entropy_bottleneck import EntropyBottleneck

Array = jax.Array


class GDNAnalysis(nn.Module):
  """g_a: four 5x5 stride-2 convs with GDN between them: x [B,H,W,3] -> y [B,H/16,W/16,M]."""

  N: int
  M: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    for i in range(3):
      x = GDN(name=f"gdn{i}")(Conv(self.N, 5, 2, name=f"conv{i}")(x))
    return Conv(self.M, 5, 2, name="conv3")(x)


class GDNSynthesis(nn.Module):
  """g_s: four 5x5 stride-2 transposed convs with IGDN between them: y_hat -> x_hat [B,H,W,3]."""

  N: int

  @nn.compact
  def __call__(self, y: Array) -> Array:
    for i in range(3):
      y = GDN(inverse=True, name=f"igdn{i}")(TransposedConv(self.N, 5, 2, name=f"deconv{i}")(y))
    return TransposedConv(3, 5, 2, name="deconv3")(y)


class HyperAnalysis(nn.Module):
  """h_a: conv3x3 (M->N), act, conv5x5/2, act, conv5x5/2 (ReLU in bmshj2018, LeakyReLU in mbt2018)."""

  N: int
  leaky: bool = False

  @nn.compact
  def __call__(self, y: Array) -> Array:
    act = (lambda v: nn.leaky_relu(v, 0.01)) if self.leaky else nn.relu
    z = act(Conv(self.N, 3, 1, name="conv0")(y))
    z = act(Conv(self.N, 5, 2, name="conv1")(z))
    return Conv(self.N, 5, 2, name="conv2")(z)


class ScaleSynthesis(nn.Module):
  """bmshj2018's h_s: deconv5x5/2, ReLU, deconv5x5/2, ReLU, conv3x3 (N->M), ReLU: the scales of y."""

  N: int
  M: int

  @nn.compact
  def __call__(self, z: Array) -> Array:
    h = nn.relu(TransposedConv(self.N, 5, 2, name="deconv0")(z))
    h = nn.relu(TransposedConv(self.N, 5, 2, name="deconv1")(h))
    return nn.relu(Conv(self.M, 3, 1, name="conv2")(h))


def no_hyper_latent(y: Array) -> Array:
  """Likelihoods of an absent z: ones (zero bits), so `losses.rate_distortion_loss` applies unchanged."""
  return jnp.ones((y.shape[0], 1, 1, 1), y.dtype)


class FactorizedPriorModel(nn.Module):
  """bmshj2018-factorized: y coded with the entropy bottleneck alone."""

  cfg: ZooConfig

  def setup(self):
    self.g_a = GDNAnalysis(self.cfg.N, self.cfg.M)
    self.g_s = GDNSynthesis(self.cfg.N)
    self.entropy_bottleneck = EntropyBottleneck(self.cfg.M)

  def analysis(self, x: Array) -> Array:
    chex.assert_rank(x, 4)
    return self.g_a(x)

  def synthesis(self, y_hat: Array) -> Array:
    return self.g_s(y_hat)

  def __call__(self, x: Array, text: Array | None = None, train: bool = False) -> dict:
    """`text` is accepted and ignored (same call as SELIC)."""
    del text
    y = self.analysis(x)
    y_hat, y_lik = self.entropy_bottleneck(y, train)
    return {"x_hat": self.synthesis(y_hat), "y": y, "y_hat": y_hat,
            "likelihoods": {"y": y_lik, "z": no_hyper_latent(y)}}


class ScaleHyperprior(nn.Module):
  """bmshj2018-hyperprior: z = h_a(|y|) with the entropy bottleneck, y ~ N(0, h_s(z_hat)^2) (Sec. 3).

  The base of the mbt2018 and cheng2020 models, which swap `make_transforms` and the Gaussian parameters.
  """

  cfg: ZooConfig

  def make_transforms(self) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """(g_a, g_s, h_a, h_s)."""
    c = self.cfg
    return GDNAnalysis(c.N, c.M), GDNSynthesis(c.N), HyperAnalysis(c.N), ScaleSynthesis(c.N, c.M)

  def setup(self):
    self.g_a, self.g_s, self.h_a, self.h_s = self.make_transforms()
    self.entropy_bottleneck = EntropyBottleneck(self.cfg.N)

  def analysis(self, x: Array) -> Array:
    chex.assert_rank(x, 4)
    return self.g_a(x)

  def hyper_analysis(self, y: Array) -> Array:
    return self.h_a(jnp.abs(y))

  def gaussian_params(self, z_hat: Array) -> tuple[Array, Array]:
    """(scales, means) of y; the means are zero in this model."""
    scales = self.h_s(z_hat)
    return scales, jnp.zeros_like(scales)

  def synthesis(self, y_hat: Array) -> Array:
    return self.g_s(y_hat)

  def __call__(self, x: Array, text: Array | None = None, train: bool = False) -> dict:
    del text
    y = self.analysis(x)
    z_hat, z_lik = self.entropy_bottleneck(self.hyper_analysis(y), train)
    scales, means = self.gaussian_params(z_hat)
    y_hat = add_uniform_noise(y, self.make_rng("noise")) if train else jnp.round(y - means) + means
    y_lik = gaussian_likelihood(y_hat, means, scales)
    return {"x_hat": self.synthesis(y_hat), "y": y, "y_hat": y_hat, "likelihoods": {"y": y_lik, "z": z_lik}}
