"""From a training workdir to an inference model directory (params, config, CDF tables)."""

from __future__ import annotations

import datetime
from typing import Any

import jax

from jaxsemic import __version__, io
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


def text_encoder_of(text_cache: str) -> str | None:
  """The encoder recorded in a caption-vector cache (`jaxsemic embed-text`), None if there is none or it is
  unreadable (a plain .npz cache records none)."""
  if not text_cache:
    return None
  from jaxsemic.text.cache import load_text_cache_info  # pylint: disable=import-outside-toplevel
  try:
    return load_text_cache_info(text_cache)["encoder"] or None
  except Exception:  # noqa: BLE001 - missing, moved or another format: not recorded
    return None


def training_metadata(config: Any, workdir: str, step: int) -> dict[str, Any]:
  """What an exported model records of its training (`jaxsemic info MODEL_DIR` shows it): step, λ, text
  encoder, data and the main training settings. The text encoder is also the one `compress` embeds with."""
  data, keys = config.get("data", {}), ("num_train_steps", "batch_size", "learning_rate", "lr_boundaries",
                                         "lr_scales", "seed", "init_from")
  meta = {"source": "jaxsemic export", "jaxsemic_version": __version__,
          "exported_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
          "workdir": str(workdir), "step": int(step), "lmbda": config.get("lmbda"),
          "train_data": {k: data.get(k) for k in ("train_dir", "text_cache", "crop_size", "caption_dropout")
                         if k in data},
          "training": {k: (list(config[k]) if isinstance(config[k], (tuple, list)) else config[k])
                       for k in keys if k in config}}
  encoder = text_encoder_of(data.get("text_cache", ""))
  if encoder:
    meta["text_encoder"] = encoder
  return meta


def export_model(workdir: str, out_dir: str, *, force: bool = False) -> int:
  """Writes the newest checkpoint's inference model to `out_dir` (with `training_metadata`); returns the
  checkpoint's step."""
  from jaxsemic.codec import model_io  # pylint: disable=import-outside-toplevel
  if io.as_epath(out_dir).exists() and not force:
    raise io.exists_error(out_dir)
  model_config, params, step = latest_params(workdir)
  config = trainer.read_config(workdir)
  model_io.save_model(out_dir, params, model_config, force=force,
                      metadata=training_metadata(config.to_dict(), workdir, step))
  return step
