"""The pure training step: one rate-distortion gradient update, skipped if anything is NaN/inf."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxsemic.layers import precision
from jaxsemic.training.state import TrainState

# (model output, x, lmbda) -> (loss, metrics); jaxsemic.losses.rate_distortion_loss by default.
LossFn = Callable[[dict, jax.Array, float], tuple[jax.Array, dict]]


def batch_inputs(batch: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array | None]:
  """(x float32 [B,H,W,3] in [0,1], text [B,D] or None) from a pipeline batch."""
  image = batch["image"]
  chex.assert_rank(image, 4)
  x = image.astype(jnp.float32) / 255.0 if image.dtype == jnp.uint8 else image
  return x, batch.get("text")


def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array, *,
               model: nn.Module, optimizer: optax.GradientTransformation, loss_fn: LossFn,
               lmbda: float, compute_dtype: str = "float32") -> tuple[TrainState, dict[str, jax.Array]]:
  """Returns the updated state and scalar metrics; `rng` is folded with the step (same noise on resume).

  `compute_dtype="bfloat16"` runs the layers of the transforms in bfloat16 (`layers.precision`); parameters,
  gradients, optimizer state, entropy models and the loss stay float32.
  """
  x, text = batch_inputs(batch)
  noise_rng = jax.random.fold_in(rng, state.step)

  def objective(params: Any) -> tuple[jax.Array, dict]:
    with precision.layers_in(compute_dtype):
      out = model.apply({"params": params}, x, text, train=True, rngs={"noise": noise_rng})
    return loss_fn(out, x, lmbda)

  (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  new_state = TrainState(
      step=state.step + 1, params=keep(params, state.params),
      opt_state=keep(opt_state, state.opt_state),
      nonfinite_count=jnp.where(finite, 0, state.nonfinite_count + 1))
  metrics = dict(metrics)
  metrics.update(loss=loss, grad_norm=optax.tree.norm(grads),
                 update_norm=optax.tree.norm(updates), param_norm=optax.tree.norm(params),
                 nonfinite=(~finite).astype(jnp.int32))
  if "skipped" in batch:
    metrics["skipped_files"] = jnp.sum(batch["skipped"])
  return new_state, metrics
