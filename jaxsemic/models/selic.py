"""SELIC (Fu et al., "Semantic-Enhanced Learned Image Compression"), Sec. III and Fig. 1-2.

x -> g_a3 -> y3 --(fusion with the text vector y2)--> y -> h_a -> z; z is coded with a factorized prior, y with
ChARM conditioned on h_s(z_hat). The text vector is used by the encoder only: the decoder needs z_hat and the
slices of y_hat, never the text.
"""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.entropy.factorized import FactorizedPrior
from jaxsemic.entropy.gaussian import gaussian_likelihood
from jaxsemic.entropy.quantization import add_uniform_noise, ste_round
from jaxsemic.models import charm
from jaxsemic.models.config import ModelConfig
from jaxsemic.models.fusion import TextFusion
from jaxsemic.models.transforms import AnalysisTransform, HyperAnalysis, HyperSynthesis, SynthesisTransform

Array = jax.Array


class SELIC(nn.Module):
  """The SELIC codec: forward pass for training/inference plus the pieces the range coder drives."""

  cfg: ModelConfig

  def setup(self):
    c = self.cfg
    self.g_a = AnalysisTransform(c.N, c.M)
    self.fusion = TextFusion(c.M, c.fusion) if c.fusion != "none" else None
    self.h_a = HyperAnalysis(c.N)
    self.h_s_mean = HyperSynthesis(c.N, c.M)
    self.h_s_scale = HyperSynthesis(c.N, c.M)
    self.z_prior = FactorizedPrior(c.N)
    d = c.slice_depth
    self.cc_mean = [charm.SliceTransform(c.charm_hidden, d) for _ in range(c.num_slices)]
    self.cc_scale = [charm.SliceTransform(c.charm_hidden, d) for _ in range(c.num_slices)]
    self.cc_lrp = [charm.SliceTransform(c.charm_hidden, d) for _ in range(c.num_slices)]
    self.g_s = SynthesisTransform(c.N, c.upsample)

  # --- the pieces shared by the forward pass, the encoder and the decoder -------------------------------------

  def analysis(self, x: Array, text: Array | None = None) -> Array:
    """y = fusion(g_a3(x), y2): [B,H,W,3] in [0,1] -> [B,H/16,W/16,M]."""
    chex.assert_rank(x, 4)
    y3 = self.g_a(x)
    if self.fusion is None:
      return y3
    if text is None:
      text = jnp.zeros((x.shape[0], self.cfg.text_dim), y3.dtype)
    chex.assert_shape(text, (x.shape[0], self.cfg.text_dim))
    return self.fusion(y3, text)

  def hyper_analysis(self, y: Array) -> Array:
    return self.h_a(y)

  def hyper_synthesis(self, z_hat: Array) -> tuple[Array, Array]:
    """Hyperprior features (for the means, for the scales) at y's resolution."""
    return self.h_s_mean(z_hat), self.h_s_scale(z_hat)

  def z_likelihood(self, z: Array) -> Array:
    return self.z_prior(z)

  def slice_params(self, i: int, hyper_mean: Array, hyper_scale: Array, decoded: list[Array]
                   ) -> tuple[Array, Array]:
    """Mean and scale of slice i from the hyperprior and the decoded slices (ChARM)."""
    ms = self.cfg.max_support_slices
    mu = self.cc_mean[i](charm.support(hyper_mean, decoded, ms))
    scale = self.cc_scale[i](charm.support(hyper_scale, decoded, ms))
    return mu, scale

  def slice_refine(self, i: int, hyper_mean: Array, decoded: list[Array], y_hat_slice: Array) -> Array:
    """Adds the latent residual prediction to a quantised slice."""
    s = charm.support(hyper_mean, decoded, self.cfg.max_support_slices)
    return y_hat_slice + charm.lrp(self.cc_lrp[i](jnp.concatenate([s, y_hat_slice], axis=-1)))

  def synthesis(self, y_hat: Array) -> Array:
    return self.g_s(y_hat)

  # --- forward pass ---------------------------------------------------------------------------------------------

  def __call__(self, x: Array, text: Array | None = None, train: bool = False) -> dict:
    """Training (noise / straight-through) or inference (hard rounding) pass; returns x_hat and likelihoods."""
    y = self.analysis(x, text)
    z = self.hyper_analysis(y)
    if train:
      z_lik = self.z_likelihood(add_uniform_noise(z, self.make_rng("noise")))
      z_hat = ste_round(z)
    else:
      z_hat = jnp.round(z)
      z_lik = self.z_likelihood(z_hat)
    hyper_mean, hyper_scale = self.hyper_synthesis(z_hat)
    y_slices = jnp.split(y, self.cfg.num_slices, axis=-1)
    liks = []

    def code_slice(i, mu_scale):
      mu, scale = mu_scale
      if train:
        liks.append(gaussian_likelihood(add_uniform_noise(y_slices[i], self.make_rng("noise")), mu, scale))
        return ste_round(y_slices[i] - mu) + mu
      y_hat_i = jnp.round(y_slices[i] - mu) + mu
      liks.append(gaussian_likelihood(y_hat_i, mu, scale))
      return y_hat_i

    decoded = charm.slice_loop(
        self.cfg.num_slices, lambda i, dec: self.slice_params(i, hyper_mean, hyper_scale, list(dec)), code_slice,
        lambda i, dec, y_hat_i: self.slice_refine(i, hyper_mean, list(dec), y_hat_i))
    y_hat = jnp.concatenate(decoded, axis=-1)
    x_hat = self.synthesis(y_hat)
    return {"x_hat": x_hat, "y_hat": y_hat,
            "likelihoods": {"y": jnp.concatenate(liks, axis=-1), "z": z_lik}}
