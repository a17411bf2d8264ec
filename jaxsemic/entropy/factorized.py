"""Non-parametric "deep factorized" density per channel (Ballé et al. 2018, appendix 6.1).

The math is plain functions of a parameter dict; `FactorizedPrior` only declares the parameters, named as in
CompressAI's `EntropyBottleneck` (`_matrix{i}`, `_bias{i}`, `_factor{i}` without the underscore).
"""

from __future__ import annotations

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.entropy.bounds import lower_bound

Array = jax.Array
LIKELIHOOD_BOUND = 1e-9


class FactorizedPrior(nn.Module):
  """Declares the per-channel monotone CDF network; returns likelihoods of (noisy or rounded) values."""

  channels: int
  filters: tuple[int, ...] = (3, 3, 3)
  init_scale: float = 10.0

  def setup(self):
    dims = (1,) + tuple(self.filters) + (1,)
    scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
    params = {}
    for i in range(len(self.filters) + 1):
      init = float(np.log(np.expm1(1.0 / scale / dims[i + 1])))
      params[f"matrix{i}"] = self.param(f"matrix{i}", nn.initializers.constant(init),
                                        (self.channels, dims[i + 1], dims[i]))
      params[f"bias{i}"] = self.param(f"bias{i}", _uniform_centered, (self.channels, dims[i + 1], 1))
      if i < len(self.filters):
        params[f"factor{i}"] = self.param(f"factor{i}", nn.initializers.zeros, (self.channels, dims[i + 1], 1))
    self.density = params

  def __call__(self, values: Array) -> Array:
    """Likelihood of each value in [..., channels] under its channel's density (bounded below by 1e-9)."""
    shape = values.shape
    v = values.reshape(-1, self.channels).T  # [C, n]
    lik = likelihood(self.density, v)
    return lik.T.reshape(shape)


def _uniform_centered(key: Array, shape: tuple[int, ...]) -> Array:
  """U(-1/2, 1/2), CompressAI's bias initialisation."""
  return jax.random.uniform(key, shape, jnp.float32, -0.5, 0.5)


def logits_cdf(params: Mapping[str, Array], x: Array, xp=jnp) -> Array:
  """Logit of the cumulative distribution at x [C, n] (monotone in x for every channel)."""
  n_layers = sum(1 for k in params if k.startswith("matrix"))
  logits = x[:, None, :]  # [C, 1, n]
  for i in range(n_layers):
    m = params[f"matrix{i}"]
    softplus = xp.logaddexp(m, 0.0)
    logits = xp.matmul(softplus, logits) + params[f"bias{i}"]
    if f"factor{i}" in params:
      logits = logits + xp.tanh(params[f"factor{i}"]) * xp.tanh(logits)
  return logits[:, 0, :]


def likelihood(params: Mapping[str, Array], v: Array) -> Array:
  """P(v - 1/2 < V < v + 1/2) per channel, computed on the stable side of the sigmoid."""
  lower = logits_cdf(params, v - 0.5)
  upper = logits_cdf(params, v + 0.5)
  sign = jax.lax.stop_gradient(-jnp.sign(lower + upper))
  lik = jnp.abs(jax.nn.sigmoid(sign * upper) - jax.nn.sigmoid(sign * lower))
  return lower_bound(lik, LIKELIHOOD_BOUND)
