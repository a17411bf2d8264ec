"""The training loop: `train_and_evaluate(config, workdir)` on one device, many devices or many hosts."""

from __future__ import annotations

import functools
import json
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsemic import io
from jaxsemic.data import pipeline, text_vectors
from jaxsemic.errors import UserError
from jaxsemic.layers import precision
from jaxsemic.training import checkpoint, distributed, evaluate, sharding
from jaxsemic.training.logger import MetricLogger
from jaxsemic.training.state import TrainState, create_state, make_optimizer
from jaxsemic.training.step import LossFn, resolve_microbatches, train_step

CONFIG_FILE = "config.json"
PREEMPTED_EXIT_STATUS = 143  # 128 + SIGTERM, what schedulers expect from a job that stopped on SIGTERM


class Preempted(Exception):
  """Training stopped on SIGTERM (or the multi-host preemption sync point) after checkpointing `step`."""

  def __init__(self, step: int):
    super().__init__(f"preempted: checkpoint saved at step {step}; re-run the same command to resume")
    self.step = step


def text_dim_of(model_config: ml_collections.ConfigDict) -> int | None:
  """The text vector size the model consumes, or None for a model without the semantic branch."""
  from jaxsemic import registry  # pylint: disable=import-outside-toplevel
  return registry.text_dim(model_config) or None


def default_model_and_loss(config: ml_collections.ConfigDict) -> tuple[nn.Module, LossFn]:
  """The registered model of `config.model` and the rate-distortion loss of jaxsemic.losses (paper Eq. 1)."""
  from jaxsemic import registry  # pylint: disable=import-outside-toplevel
  from jaxsemic.losses import rate_distortion_loss  # pylint: disable=import-outside-toplevel
  return registry.build_model(config.model), rate_distortion_loss


def init_state_fn(model: nn.Module, optimizer, config: ml_collections.ConfigDict,
                  seed: int) -> Callable[[], TrainState]:
  """A no-argument function creating the initial state (for eval_shape and a sharded jit)."""
  crop = config.data.crop_size
  dim = text_dim_of(config.model)

  def init() -> TrainState:
    # The "rbg" PRNG: XLA:CPU compiles one bit-generator op per parameter much faster than threefry.
    params_rng, noise_rng = jax.random.split(jax.random.key(seed, impl="rbg"))
    x = jnp.zeros((1, crop, crop, 3), jnp.float32)
    text = None if dim is None else jnp.zeros((1, dim), jnp.float32)
    variables = model.init({"params": params_rng, "noise": noise_rng}, x, text, train=True)
    return create_state(variables["params"], optimizer)

  return init


def params_from_model_dir(path: str, abstract_params: Any) -> Any:
  """Params of an exported/imported model directory, checked leaf by leaf against this run's model."""
  from jaxsemic.codec import model_io  # pylint: disable=import-outside-toplevel
  loaded = model_io.load_model(path).params
  try:
    model_io.check_params(loaded, abstract_params)
  except UserError as e:
    raise UserError(f"config.init_from={path}: {e}") from e
  return jax.tree.map(lambda a, x: np.asarray(x, a.dtype), abstract_params, loaded)


def make_sharded_step(model: nn.Module, optimizer, loss_fn: LossFn, lmbda: float,
                      mesh: jax.sharding.Mesh, state_shardings: Any, compute_dtype: str = "float32",
                      microbatches: int = 1):
  """train_step jitted with explicit shardings: state replicated, batch split over 'data', state donated."""
  step = functools.partial(train_step, model=model, optimizer=optimizer, loss_fn=loss_fn,
                           lmbda=lmbda, compute_dtype=compute_dtype, microbatches=microbatches)
  repl = sharding.replicated(mesh)
  return jax.jit(step, in_shardings=(state_shardings, sharding.batch_sharding(mesh), repl),
                 out_shardings=(state_shardings, repl), donate_argnums=0)


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Saves the run's config as JSON (what `jaxsemic export` reads the model config from); local or gs://."""
  path = io.as_epath(workdir) / CONFIG_FILE
  tmp = path.with_name(CONFIG_FILE + ".tmp")  # written whole, then moved over the old one
  tmp.write_text(config.to_json_best_effort(indent=2), encoding="utf-8")
  tmp.replace(path)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run in `workdir` (local or gs://) was started with."""
  path = io.as_epath(workdir) / CONFIG_FILE
  if not path.exists():
    raise UserError(f"no training run in {workdir} ({CONFIG_FILE} not found)")
  return ml_collections.ConfigDict(json.loads(path.read_text(encoding="utf-8")))


def eval_text_lookup(config: ml_collections.ConfigDict) -> Callable[[str], np.ndarray | None]:
  """path -> the first cached caption vector of an eval image (empty caption if none)."""
  dim = text_dim_of(config.model)
  if dim is None:
    return lambda path: None
  table = text_vectors.load_vectors(config.eval.text_cache) if config.eval.text_cache else {}
  root = config.eval.dir

  def lookup(path: str) -> np.ndarray:
    from jaxsemic.data.files import relative_key  # pylint: disable=import-outside-toplevel
    rows, empty = text_vectors.vectors_for_files(table, [relative_key(path, root)], dim)
    return empty if rows[0] is None else rows[0][0]

  return lookup


def _evaluate(model: nn.Module, state: TrainState, config: ml_collections.ConfigDict, step: int,
              log: MetricLogger) -> dict[str, float]:
  """Held-out metrics, logged and returned with an eval_ prefix."""
  ev = evaluate.evaluate_folder(model, state.params, config, eval_text_lookup(config))
  log.eval(step, ev)
  return {f"eval_{k}": v for k, v in ev.items()}


def _any_process(flag: bool) -> bool:
  """True if `flag` is true on any process (all processes must stop at the same step)."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))


class _StopSignal:
  """Records SIGTERM while installed (single process); multi-host runs use orbax's preemption sync point.

  With jax.distributed, JAX's preemption service owns SIGTERM and every process learns of it at the same
  step through `manager.reached_preemption(step)`; a single process records the signal itself.
  """

  def __init__(self):
    self.received, self.previous, self.mask = False, None, None

  def install(self) -> None:
    """Catches SIGTERM from now on (only possible in the main thread of a single-process run).

    SIGTERM is also blocked in this thread, so the data workers grain starts from here inherit the block
    (pipeline.hold_sigterm); the signal still arrives, through another thread or as pending.
    """
    self.mask = pipeline.hold_sigterm()
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self.previous = signal.signal(signal.SIGTERM, self._handle)

  def restore(self) -> None:
    """Unblocks SIGTERM and puts back the handler that was there before install()."""
    pipeline.release_sigterm(self.mask)
    self.mask = None
    if self.previous is not None:
      signal.signal(signal.SIGTERM, self.previous)
      self.previous = None

  def _handle(self, signum, frame) -> None:  # pylint: disable=unused-argument
    self.received = True

  def requested(self, manager, step: int) -> bool:
    """True once SIGTERM arrived (this process) or the preemption sync point is reached (all processes)."""
    if jax.process_count() > 1:
      return manager.reached_preemption(step)
    return self.received or pipeline.sigterm_pending()


class _NonFiniteGuard:
  """Counts consecutive skipped (NaN/inf) steps from lagged metrics and stops the run when they repeat."""

  def __init__(self, limit: int, log: MetricLogger):
    self.limit, self.log, self.run = limit, log, 0

  def check(self, step: int, nonfinite: int) -> None:
    if not nonfinite:
      self.run = 0
      return
    self.run += 1
    self.log.message(f"step {step}: loss or gradient is NaN/inf, update skipped ({self.run} in a row)")
    if self.run >= self.limit:
      raise UserError(f"loss was NaN/inf for {self.run} steps in a row (last at step {step}); "
                      "stopping: lower config.learning_rate or config.grad_clip, or check the data")


class _MetricWindow:
  """Fetches each step's metrics one step late (the device stays a step ahead), checks and averages them."""

  def __init__(self, guard: _NonFiniteGuard):
    self.guard, self.pending, self.rows, self.skipped_files = guard, None, [], 0

  def push(self, step: int, metrics: dict[str, jax.Array]) -> None:
    """Records this step's (still on-device) metrics and reads the previous step's."""
    self._fetch()
    self.pending = (step, metrics)

  def mean(self) -> dict[str, float]:
    """Averages of every metric since the last call, plus the running count of skipped files."""
    self._fetch()
    rows, self.rows = self.rows, []
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["skipped_files_total"] = self.skipped_files
    return out

  def _fetch(self) -> None:
    if self.pending is None:
      return
    (step, metrics), self.pending = self.pending, None
    done = sharding.to_host(metrics)
    self.guard.check(step, int(done["nonfinite"]))
    self.skipped_files += int(done.get("skipped_files", 0))
    self.rows.append(done)


class Run(NamedTuple):
  """What a run is built from before any state exists: mesh, model, optimizer, abstract state, data."""
  mesh: jax.sharding.Mesh
  model: nn.Module
  loss_fn: LossFn
  optimizer: Any
  init: Callable[[], TrainState]
  abstract: TrainState  # ShapeDtypeStructs of the initial state
  state_shardings: Any
  train_set: pipeline.TrainSet
  loader: Any  # this process's grain.DataLoader
  microbatches: int  # config.microbatches resolved for this mesh and backend


def microbatches(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> int:
  """`config.microbatches` resolved for this mesh and backend (step.resolve_microbatches)."""
  try:
    per_device = config.batch_size // mesh.shape[sharding.DATA_AXIS]
    return resolve_microbatches(config.get("microbatches", 0), per_device, config.data.crop_size,
                                jax.default_backend())
  except ValueError as e:
    raise UserError(f"config.microbatches: {e}") from e


def build(config: ml_collections.ConfigDict, model: nn.Module | None = None,
          loss_fn: LossFn | None = None) -> Run:
  """The mesh over all devices, the model and loss (registry defaults), optimizer, shapes and data shard."""
  try:
    precision.compute_dtype(config.get("compute_dtype", "float32"))
  except ValueError as e:
    raise UserError(f"config.compute_dtype: {e}") from e
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)
  parts = microbatches(config, mesh)
  train_set = pipeline.find_train_set(config.data, text_dim_of(config.model))
  loader = pipeline.make_train_loader(config, train_set, process_index=jax.process_index(),
                                      process_count=jax.process_count())
  if model is None or loss_fn is None:
    default_model, default_loss = default_model_and_loss(config)
    model, loss_fn = model or default_model, loss_fn or default_loss
  optimizer = make_optimizer(config)
  init = init_state_fn(model, optimizer, config, config.seed)
  abstract = jax.eval_shape(init)
  state_shardings = sharding.tree_shardings(abstract, sharding.replicated(mesh))
  return Run(mesh, model, loss_fn, optimizer, init, abstract, state_shardings, train_set, loader, parts)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       model: nn.Module | None = None,
                       loss_fn: LossFn | None = None) -> dict[str, float]:
  """Trains config.num_train_steps steps (resuming from `workdir` if it holds checkpoints).

  Returns the last logged training metrics (and eval metrics, prefixed eval_).
  """
  distributed.initialize()
  io.as_epath(workdir).mkdir(parents=True, exist_ok=True)
  chief = jax.process_index() == 0
  if chief:
    write_config(workdir, config)
  run = build(config, model, loss_fn)
  mesh, model, loss_fn, optimizer = run.mesh, run.model, run.loss_fn, run.optimizer
  init, abstract, state_shardings, train_set = run.init, run.abstract, run.state_shardings, run.train_set
  log = MetricLogger(workdir, config.num_train_steps, enabled=chief)
  log.message(f"{len(train_set.paths)} training images"
              + (f" ({train_set.num_small_skipped} smaller than the crop skipped)"
                 if train_set.num_small_skipped else "")
              + f"; {jax.process_count()} process(es), {jax.device_count()} device(s)")
  with pipeline.sigterm_held():  # grain's workers start here or at the first batch: SIGTERM is the trainer's
    data_iter = iter(run.loader)
  train_rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)
  manager = checkpoint.make_manager(workdir, config)
  with pipeline.sigterm_held():
    state = checkpoint.restore_latest(
        manager, checkpoint.abstract_with_shardings(abstract, state_shardings), data_iter)
  if state is None and config.get("init_from"):  # fine-tuning (e.g. SEDIC's reference codec, Sec. IV-A)
    params = params_from_model_dir(config.init_from, abstract.params)
    state = jax.jit(functools.partial(create_state, optimizer=optimizer),
                    out_shardings=state_shardings)(params)
    log.message(f"initialised from {config.init_from} (fresh optimizer, step 0)")
  elif state is None:
    state = jax.jit(init, out_shardings=state_shardings)()
  else:
    log.message(f"resumed from checkpoint at step {int(sharding.to_host(state.step))}")
  step_fn = make_sharded_step(model, optimizer, loss_fn, config.lmbda, mesh, state_shardings,
                              config.get("compute_dtype", "float32"), run.microbatches)
  train_rng = jax.device_put(train_rng, sharding.replicated(mesh))

  window = _MetricWindow(_NonFiniteGuard(config.max_nonfinite_steps, log))
  step = int(sharding.to_host(state.step))
  last, evaluated_at = {}, None
  deadline = time.monotonic() + config.max_train_hours * 3600 if config.max_train_hours else None
  preempted, stop = False, _StopSignal()
  try:
    stop.install()  # kept until the last checkpoint is on disk: a second SIGTERM must not cut it short
    while step < config.num_train_steps:
      if stop.requested(manager, step):
        log.message(f"stopping at step {step}: SIGTERM (preemption); saving a checkpoint")
        preempted = True
        break
      if deadline is not None and _any_process(time.monotonic() > deadline):
        log.message(f"stopping at step {step}: config.max_train_hours={config.max_train_hours} reached")
        break
      batch = sharding.global_batch(next(data_iter), mesh)
      state, metrics = step_fn(state, batch, train_rng)
      step += 1
      window.push(step, metrics)
      checkpoint.save(manager, step, state, data_iter, every=config.checkpoint_every)
      if step % config.log_every == 0 or step == config.num_train_steps:
        last = window.mean()
        log.train(step, last)
      if chief and config.eval.dir and config.eval_every and step % config.eval_every == 0:
        last.update(_evaluate(model, state, config, step, log))
        evaluated_at = step
    checkpoint.save(manager, step, state, data_iter)  # the final step, unless just saved
    if preempted:
      raise Preempted(step)
    if chief and config.eval.dir and evaluated_at != step:
      last.update(_evaluate(model, state, config, step, log))
  finally:
    manager.wait_until_finished()
    manager.close()
    log.close()
    stop.restore()
  if window.skipped_files:
    log.message(f"{window.skipped_files} unreadable image reads were skipped during training")
  return last
