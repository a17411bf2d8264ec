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


# Auto microbatches on CPU: parts of at most this many pixels (2 crops of 256²). Measured on the bmshj2018 step,
# batch 8 at 256² (benchmarks/train_step_modes.py, docs/training.md): 4 parts beat 1, 2 and 8.
CPU_MICROBATCH_PIXELS = 2 * 256 * 256


def resolve_microbatches(requested: int, batch_per_device: int, crop: int, backend: str) -> int:
  """`config.microbatches` made concrete: a divisor of the per-device batch (0 = auto, see config.py)."""
  if requested < 0:
    raise ValueError(f"microbatches must be >= 0 (0 = auto), not {requested}")
  if requested:
    if batch_per_device % requested:
      raise ValueError(f"microbatches {requested} does not divide the batch per device ({batch_per_device})")
    return requested
  if backend != "cpu":
    return 1
  return next(k for k in range(1, batch_per_device + 1)
              if batch_per_device % k == 0 and batch_per_device // k * crop * crop <= CPU_MICROBATCH_PIXELS
              or k == batch_per_device)


def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array, *,
               model: nn.Module, optimizer: optax.GradientTransformation, loss_fn: LossFn,
               lmbda: float, compute_dtype: str = "float32",
               microbatches: int = 1) -> tuple[TrainState, dict[str, jax.Array]]:
  """Returns the updated state and scalar metrics; `rng` is folded with the step (same noise on resume).

  `compute_dtype="bfloat16"` runs the layers of the transforms in bfloat16 (`layers.precision`); parameters,
  gradients, optimizer state, entropy models and the loss stay float32. `microbatches` > 1 splits the batch
  into that many equal parts whose gradients are averaged (gradient accumulation within the step).
  """
  x, text = batch_inputs(batch)
  noise_rng = jax.random.fold_in(rng, state.step)
  (loss, metrics), grads = accumulated_grad(model, loss_fn, lmbda, compute_dtype, state.params, x, text,
                                            noise_rng, microbatches)
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


def microbatch(tree: Any, i: int, k: int) -> Any:
  """Items i, i+k, i+2k, ... of every [B, ...] leaf: a data-sharded batch splits without moving data."""
  return jax.tree.map(lambda v: v.reshape((v.shape[0] // k, k) + v.shape[1:])[:, i], tree)


def accumulated_grad(model: nn.Module, loss_fn: LossFn, lmbda: float, compute_dtype: str, params: Any,
                     x: jax.Array, text: jax.Array | None, noise_rng: jax.Array,
                     microbatches: int) -> tuple[tuple[jax.Array, dict], Any]:
  """((loss, metrics), grads) of the batch, averaged over `microbatches` equal parts (noise key per part).

  For a loss that is a batch mean (as `rate_distortion_loss`) this is the batch's loss and gradient up to the
  noise draw; metrics are the parts' means (psnr: the mean of the parts' psnr).
  """
  if microbatches < 1 or x.shape[0] % microbatches:
    raise ValueError(f"a batch of {x.shape[0]} does not split into {microbatches} equal microbatches")

  def objective(params: Any, inputs: tuple, key: jax.Array) -> tuple[jax.Array, dict]:
    xs, texts = inputs
    with precision.layers_in(compute_dtype):
      out = model.apply({"params": params}, xs, texts, train=True, rngs={"noise": key})
    return loss_fn(out, xs, lmbda)

  grad_fn = jax.value_and_grad(objective, has_aux=True)
  if microbatches == 1:
    return grad_fn(params, (x, text), noise_rng)
  # Unrolled: as a lax.scan the step took 30x longer on XLA:CPU (measured: 41.7 s against 1.26 s).
  parts = [grad_fn(params, microbatch((x, text), i, microbatches), jax.random.fold_in(noise_rng, i))
           for i in range(microbatches)]
  return jax.tree.map(lambda *v: sum(v) / microbatches, *parts)
