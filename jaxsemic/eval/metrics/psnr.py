"""Peak signal-to-noise ratio over all RGB values of each image."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


@jax.jit
def mse(x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean squared error per image: [B,H,W,C] x2 -> [B]."""
  chex.assert_equal_shape((x, y))
  chex.assert_rank(x, 4)
  d = x.astype(jnp.float32) - y.astype(jnp.float32)
  return jnp.mean(d * d, axis=(1, 2, 3))


def psnr(x: jax.Array, y: jax.Array, data_range: float = 1.0) -> jax.Array:
  """PSNR in dB per image, 10 log10(range² / MSE); +inf for identical images."""
  return 10.0 * jnp.log10(data_range**2 / mse(x, y))
