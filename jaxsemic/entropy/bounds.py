"""Ballé's LowerBound: max(x, bound) with a gradient that can still push x up (Ballé et al. 2018, appendix)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


@jax.custom_vjp
def lower_bound(x: Array, bound: float) -> Array:
  """max(x, bound) whose gradient still flows when it pushes x upwards (Ballé's LowerBound)."""
  return jnp.maximum(x, bound)


def _lower_bound_fwd(x, bound):
  return jnp.maximum(x, bound), (x, bound)


def _lower_bound_bwd(res, g):
  x, bound = res
  pass_through = (x >= bound) | (g < 0)
  return (jnp.where(pass_through, g, 0.0), None)


lower_bound.defvjp(_lower_bound_fwd, _lower_bound_bwd)
