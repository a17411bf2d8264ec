"""Quantisation proxies: additive uniform noise (rate term) and straight-through rounding (synthesis path)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def add_uniform_noise(x: Array, rng: Array) -> Array:
  """x + U(-1/2, 1/2): the continuous relaxation of rounding used for the rate (Ballé et al. 2017)."""
  return x + jax.random.uniform(rng, x.shape, x.dtype, -0.5, 0.5)


def ste_round(x: Array) -> Array:
  """Rounds in the forward pass, identity gradient in the backward pass."""
  return x + jax.lax.stop_gradient(jnp.round(x) - x)
