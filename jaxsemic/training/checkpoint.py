"""Orbax checkpoints of the train state together with the grain iterator state; resume from the latest."""

from __future__ import annotations

from typing import Any

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from jaxsemic import io

CHECKPOINT_SUBDIR = "checkpoints"


def checkpoint_dir(workdir: str) -> epath.Path:
  """The checkpoint folder of a (local or gs://...) training workdir."""
  return io.as_epath(workdir) / CHECKPOINT_SUBDIR


def make_manager(workdir: str, config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  """A manager keeping the last config.keep_checkpoints checkpoints (saves are written asynchronously)."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=config.keep_checkpoints, create=True, enable_async_checkpointing=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any,
         data_iterator: grain.DataLoaderIterator | None, *, every: int = 1) -> bool:
  """Saves state and the iterator position if `step` is a multiple of `every`; True if saved."""
  if step % every or manager.latest_step() == step:
    return False
  items = {"state": ocp.args.StandardSave(state)}
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
  return manager.save(step, args=ocp.args.Composite(**items), force=True)


def restore_latest(manager: ocp.CheckpointManager, abstract_state: Any,
                   data_iterator: grain.DataLoaderIterator | None) -> Any | None:
  """Restores the newest checkpoint into the shapes/shardings of `abstract_state`; None if none exists.

  The iterator (if given) is moved in place to where it was when the checkpoint was written.
  """
  step = manager.latest_step()
  if step is None:
    return None
  items = {"state": ocp.args.StandardRestore(abstract_state)}
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**items))
  return restored["state"]


def restore_params(workdir: str, abstract_state: Any, step: int | None = None) -> tuple[Any, int]:
  """(params, step) of a checkpoint in `workdir` (latest by default), without the data iterator."""
  path = checkpoint_dir(workdir)
  with ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(create=False)) as manager:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {path}")
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))
  return restored["state"].params, step


def abstract_with_shardings(tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs carrying the target shardings (the orbax restore target)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      tree, shardings)
