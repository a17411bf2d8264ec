"""Generalized divisive normalization (Ballé et al. 2016), parametrised as in CompressAI for weight import."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.entropy.bounds import lower_bound

Array = jax.Array

_REPARAM_OFFSET = 2.0 ** -18
_PEDESTAL = _REPARAM_OFFSET ** 2


class GDN(nn.Module):
  """y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2); `inverse=True` multiplies instead (IGDN)."""

  inverse: bool = False
  beta_min: float = 1e-6
  gamma_init: float = 0.1

  @nn.compact
  def __call__(self, x: Array) -> Array:
    c = x.shape[-1]
    beta_p = self.param("beta", lambda _, s: jnp.sqrt(jnp.ones(s) + _PEDESTAL), (c,))
    gamma_p = self.param("gamma", lambda _, s: jnp.sqrt(self.gamma_init * jnp.eye(s[0]) + _PEDESTAL), (c, c))
    beta = lower_bound(beta_p, (self.beta_min + _PEDESTAL) ** 0.5) ** 2 - _PEDESTAL
    gamma = lower_bound(gamma_p, _REPARAM_OFFSET) ** 2 - _PEDESTAL
    # gamma[i, j]: output channel i, input channel j (CompressAI's 1x1 conv weight layout).
    norm = jnp.einsum("...j,ij->...i", jnp.square(x), gamma.astype(x.dtype)) + beta.astype(x.dtype)
    return x * jnp.sqrt(norm) if self.inverse else x * jax.lax.rsqrt(norm)
