"""From a training workdir to an inference model directory (params, config, CDF tables)."""

from __future__ import annotations

import jax

from jaxsemic import io
from jaxsemic.errors import UserError
from jaxsemic.training import checkpoint, sharding, trainer
from jaxsemic.training.state import make_optimizer


def latest_params(workdir: str):
  """(model config, params, step) of the newest checkpoint in a training workdir."""
  config = trainer.read_config(workdir)
  model, _ = trainer.default_model_and_loss(config)
  init = trainer.init_state_fn(model, make_optimizer(config), config, 0)
  abstract = jax.eval_shape(init)
  repl = sharding.replicated(sharding.make_mesh(jax.local_devices()[:1]))
  target = checkpoint.abstract_with_shardings(abstract, sharding.tree_shardings(abstract, repl))
  try:
    params, step = checkpoint.restore_params(workdir, target)
  except FileNotFoundError as e:
    raise UserError(f"no checkpoint in {workdir}: train first") from e
  return config.model, sharding.to_host(params), step


def export_model(workdir: str, out_dir: str, *, force: bool = False) -> int:
  """Writes the newest checkpoint's inference model to `out_dir`; returns the checkpoint's step."""
  from jaxsemic.codec import model_io  # pylint: disable=import-outside-toplevel
  if io.as_epath(out_dir).exists() and not force:
    raise io.exists_error(out_dir)
  model_config, params, step = latest_params(workdir)
  model_io.save_model(out_dir, params, model_config, force=force)
  return step
