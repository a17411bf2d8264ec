"""Train state and optimizer: Adam with a piecewise-constant learning rate and gradient clipping."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training, as one pytree (checkpointed as a whole)."""

  step: jax.Array  # int32 scalar: number of updates attempted (including skipped ones).
  params: Any
  opt_state: Any
  nonfinite_count: jax.Array  # int32 scalar: consecutive steps skipped for a NaN/inf loss or grad.


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """config.learning_rate, multiplied by config.lr_scales[i] from step config.lr_boundaries[i] on."""
  if len(config.lr_boundaries) != len(config.lr_scales):
    raise ValueError("config.lr_boundaries and config.lr_scales must have the same length")
  return optax.piecewise_constant_schedule(
      config.learning_rate,
      {int(b): float(s) for b, s in zip(config.lr_boundaries, config.lr_scales)})


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Global-norm clipping (config.grad_clip, 0 = off) followed by Adam."""
  parts = []
  if config.grad_clip:
    parts.append(optax.clip_by_global_norm(config.grad_clip))
  parts.append(optax.adam(learning_rate_schedule(config)))
  return optax.chain(*parts)


def create_state(params: Any, optimizer: optax.GradientTransformation) -> TrainState:
  """A fresh state at step 0."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params), nonfinite_count=jnp.zeros((), jnp.int32))
