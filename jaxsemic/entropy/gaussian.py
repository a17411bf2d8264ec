"""Gaussian conditional: likelihoods for training and the quantised scale table for coding.

As in CompressAI's `GaussianConditional` (Ballé et al. 2018, Minnen et al. 2018): each latent is modelled as a
Gaussian convolved with a unit box, p(y) = Phi((y - mu + 1/2)/s) - Phi((y - mu - 1/2)/s), scales bounded below.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.entropy.bounds import lower_bound

Array = jax.Array
SCALE_BOUND = 0.11
LIKELIHOOD_BOUND = 1e-9


def default_scale_table(lo: float = SCALE_BOUND, hi: float = 256.0, levels: int = 256) -> np.ndarray:
  """Log-spaced scales, float32 so every device compares the same numbers.

  CompressAI uses 64 levels (adjacent ratio 1.13, up to ~0.02 bit per symbol lost to the coarser scale);
  256 levels (ratio 1.03) keep that loss below ~0.0014 bit per symbol at the cost of larger tables.
  """
  return np.exp(np.linspace(math.log(lo), math.log(hi), levels)).astype(np.float32)


def _std_cdf(x: Array) -> Array:
  return 0.5 * jax.lax.erfc(-x * (2 ** -0.5))


def gaussian_likelihood(y: Array, mean: Array, scale: Array) -> Array:
  """Probability mass of the unit bin around y under N(mean, scale^2); symmetric form for stability."""
  scale = lower_bound(scale, SCALE_BOUND)
  v = jnp.abs(y - mean)
  upper = _std_cdf((0.5 - v) / scale)
  lower = _std_cdf((-0.5 - v) / scale)
  return lower_bound(upper - lower, LIKELIHOOD_BOUND)


def scale_index(scale: Array, table: Array) -> Array:
  """Index of the coding table for each scale: the number of table[:-1] entries strictly below it.

  Both encoder and decoder call this on float32 scales from the same computation, so the indices agree.
  """
  s = jnp.maximum(scale.astype(jnp.float32), SCALE_BOUND)
  # A binary search over the ascending table: the same count as comparing with every entry, ~10x faster.
  return jnp.searchsorted(jnp.asarray(table[:-1], jnp.float32), s, side="left").astype(jnp.int32)
