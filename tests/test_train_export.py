"""`jaxsemic export`: the newest checkpoint of a run becomes an inference model directory."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsemic import cli
from jaxsemic.codec import model_io
from jaxsemic.registry import build_model
from jaxsemic.training import checkpoint, trainer
from jaxsemic.training.config import base_config
from jaxsemic.training.state import create_state, make_optimizer


def _tiny_run(workdir: str):
  """A workdir with config.json and a step-3 checkpoint of a tiny SELIC (params from lazy_init)."""
  config = base_config()
  config.model.update(N=8, M=8, num_slices=2, charm_hidden=(8, 8), fusion="none")
  config.checkpoint_every = 1
  model = build_model(config.model)
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)  # lazy_init: initialisers only, no forward
  params = model.lazy_init({"params": jax.random.PRNGKey(0), "noise": jax.random.PRNGKey(1)},
                           x, None, train=True)["params"]
  state = create_state(params, make_optimizer(config))
  state = state.replace(step=jnp.asarray(3, jnp.int32))
  os.makedirs(workdir)
  trainer.write_config(workdir, config)
  with checkpoint.make_manager(workdir, config) as manager:
    checkpoint.save(manager, 3, state, None)
    manager.wait_until_finished()
  return params


@pytest.mark.slow
def test_export_writes_a_loadable_model_and_keeps_existing_output(tmp_path, capsys):
  workdir, out = str(tmp_path / "run"), str(tmp_path / "model")
  params = _tiny_run(workdir)
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
  assert "exported step 3" in capsys.readouterr().out
  loaded = model_io.load_model(out)
  assert loaded.cfg.M == 8
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 1
  assert "--force" in capsys.readouterr().err
  assert cli.main(["export", "--workdir", workdir, "--out", out, "--force"]) == 0


def test_export_without_a_run_is_a_one_line_error(tmp_path, capsys):
  assert cli.main(["export", "--workdir", str(tmp_path), "--out", str(tmp_path / "m")]) == 1
  err = capsys.readouterr().err.strip()
  assert "no training run" in err and len(err.splitlines()) == 1


def test_init_from_an_exported_model_fine_tunes_from_its_params(tmp_path, capsys):
  workdir, out = str(tmp_path / "run"), str(tmp_path / "model")
  params = _tiny_run(workdir)
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
  config = trainer.read_config(workdir)
  config.unlock()
  config.data.crop_size = 64
  config.data.worker_count = 0
  config.num_train_steps = 0  # only the initial state is written
  config.init_from = out
  trainer.train_and_evaluate(config, str(tmp_path / "tune"))
  from jaxsemic.training import export  # pylint: disable=import-outside-toplevel
  _, tuned, step = export.latest_params(str(tmp_path / "tune"))
  assert step == 0
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(tuned)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Another architecture: a one-line error naming a parameter.
  config.model.charm_hidden = (8, 12)
  with pytest.raises(trainer.UserError, match="shape"):
    trainer.train_and_evaluate(config, str(tmp_path / "other"))
  config.model.update(charm_hidden=(8, 8), M=16)  # N != M adds a shortcut conv the export lacks
  with pytest.raises(trainer.UserError, match="missing"):
    trainer.train_and_evaluate(config, str(tmp_path / "other2"))


def test_export_records_metadata_with_normal_permissions_and_info_shows_it(tmp_path, capsys):
  import json
  import re
  import stat

  from jaxsemic import io
  workdir, out = str(tmp_path / "run"), str(tmp_path / "model")
  _tiny_run(workdir)
  assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
  meta = model_io.load_model(out).metadata
  config = trainer.read_config(workdir)
  assert meta["step"] == 3 and meta["lmbda"] == config.lmbda and meta["workdir"] == workdir
  assert meta["training"]["num_train_steps"] == config.num_train_steps and "text_encoder" not in meta
  assert stat.S_IMODE(os.stat(out).st_mode) == io.default_mode(directory=True)  # not mkdtemp's 0700
  for name in ("config.json", "tables.npz"):
    assert stat.S_IMODE(os.stat(os.path.join(out, name)).st_mode) == io.default_mode()
  capsys.readouterr()
  assert cli.main(["info", out]) == 0
  text = capsys.readouterr().out
  assert re.search(r"^training step +3$", text, re.M) and re.search(rf"^lambda +{config.lmbda:g}$", text, re.M)
  assert cli.main(["info", out, "--json"]) == 0
  assert json.loads(capsys.readouterr().out)["metadata"]["step"] == 3


def test_training_metadata_names_the_text_encoder_of_the_caption_cache(tmp_path):
  from jaxsemic.text.cache import save_text_cache
  from jaxsemic.training.export import training_metadata
  cache = str(tmp_path / "text.safetensors")
  save_text_cache(cache, {"a.png": np.ones((1, 4), np.float32)}, encoder="my-bert", empty=np.zeros(4))
  config = {"lmbda": 0.01, "num_train_steps": 5, "data": {"train_dir": "DATA", "text_cache": cache}}
  meta = training_metadata(config, "runs/x", 5)
  assert meta["text_encoder"] == "my-bert" and meta["train_data"]["train_dir"] == "DATA" and meta["step"] == 5
  config["data"]["text_cache"] = str(tmp_path / "moved.safetensors")  # gone since training: not recorded
  assert "text_encoder" not in training_metadata(config, "runs/x", 5)
