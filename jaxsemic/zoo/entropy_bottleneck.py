"""CompressAI's `EntropyBottleneck`: the deep factorized prior plus learned quantiles (median and tails).

In inference CompressAI rounds around the learned median m of each channel, z_hat = round(z - m) + m, and
codes the symbols round(z - m); the density itself is `jaxsemic.entropy.factorized` (Ballé et al. 2018,
appendix 6.1). Training adds uniform noise and ignores the median.
"""

from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.entropy import tables as tables_lib
from jaxsemic.entropy.factorized import FactorizedPrior
from jaxsemic.entropy.quantization import add_uniform_noise

Array = jax.Array
FILTERS = (3, 3, 3, 3)  # CompressAI's default (tensorflow/compression uses 3 hidden layers; CompressAI 4)


class EntropyBottleneck(nn.Module):
  """Returns (z_hat, likelihoods): noisy z in training, median-centred rounding otherwise."""

  channels: int
  init_scale: float = 10.0

  def setup(self):
    self.density = FactorizedPrior(self.channels, FILTERS, self.init_scale)
    s = self.init_scale
    self.quantiles = self.param(
        "quantiles", lambda _, shape: jnp.broadcast_to(jnp.array([-s, 0.0, s]), shape), (self.channels, 1, 3))

  def medians(self) -> Array:
    return self.quantiles[:, 0, 1]

  def __call__(self, z: Array, train: bool = False) -> tuple[Array, Array]:
    if train:
      z_hat = add_uniform_noise(z, self.make_rng("noise"))
    else:
      m = jax.lax.stop_gradient(self.medians()).astype(z.dtype)
      z_hat = jnp.round(z - m) + m
    return z_hat, self.density(z_hat)


def median_tables(eb_params: Mapping[str, Any], tail_mass: float = tables_lib.TAIL_MASS
                  ) -> tables_lib.CodingTables:
  """Coding tables of the symbols s = round(z - m): the density shifted by its median m, per channel.

  Shifting the input of the first layer, softplus(W0) (s + m) + b0, equals folding softplus(W0) m into b0, so
  the shared `factorized_tables` builds them.
  """
  density = {k: np.asarray(v, np.float64) for k, v in eb_params["density"].items()}
  med = np.asarray(eb_params["quantiles"], np.float64)[:, 0, 1]
  density["bias0"] = density["bias0"] + np.logaddexp(density["matrix0"], 0.0) * med[:, None, None]
  return tables_lib.factorized_tables(density, tail_mass)
