"""gs:// workdirs: paths go through etils.epath (a mocked bucket backed by a local folder), never os.path."""

from __future__ import annotations

import os

import numpy as np
import pytest
from etils import epath
from etils.epath import testing as epath_testing

from jaxsemic import io
from jaxsemic.errors import UserError
from jaxsemic.training import checkpoint, export, trainer
from jaxsemic.training.config import base_config


@pytest.fixture
def bucket(tmp_path, monkeypatch):
  """Every gs://X path maps to tmp_path/bucket/X for epath's file operations; yields that folder."""
  root = tmp_path / "bucket"
  root.mkdir()
  monkeypatch.chdir(tmp_path)  # a path mistaken for a local one would appear here as 'gs:'

  def local(p):
    s = os.fspath(p)
    return str(root / s[len("gs://"):]) if s.startswith("gs://") else p

  def mapped(original, *args, **kwargs):
    return original(*[local(a) if isinstance(a, (str, os.PathLike)) else a for a in args], **kwargs)

  def open_object(original, path, mode="r", **kwargs):
    if any(c in mode for c in "wax"):  # an object store has no folders to create first
      os.makedirs(os.path.dirname(local(path)), exist_ok=True)
    return mapped(original, path, mode, **kwargs)

  names = ("copy", "exists", "glob", "isdir", "listdir", "makedirs", "mkdir", "remove", "rename",
           "replace", "rmtree", "stat", "walk")
  with epath_testing.mock_epath(**dict.fromkeys(names, mapped), open=open_object):
    yield root
  assert not (tmp_path / "gs:").exists()


def test_remote_paths_keep_their_scheme_and_local_ones_become_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert str(checkpoint.checkpoint_dir("gs://b/runs/x")) == "gs://b/runs/x/checkpoints"
  assert str(checkpoint.checkpoint_dir("runs/x")) == str(tmp_path / "runs" / "x" / "checkpoints")
  assert io.is_remote("gs://b/x") and not io.is_remote("runs/x")
  assert isinstance(io.as_epath("gs://b/x"), epath.Path)


def test_config_json_is_written_to_and_read_from_the_bucket(bucket):
  config = base_config()
  config.lmbda = 0.03
  io.as_epath("gs://b/runs/x").mkdir(parents=True, exist_ok=True)
  trainer.write_config("gs://b/runs/x", config)
  assert (bucket / "b" / "runs" / "x" / trainer.CONFIG_FILE).is_file()
  assert not (bucket / "b" / "runs" / "x" / (trainer.CONFIG_FILE + ".tmp")).exists()
  assert trainer.read_config("gs://b/runs/x").lmbda == 0.03
  with pytest.raises(UserError, match="no training run in gs://b/runs/y"):
    trainer.read_config("gs://b/runs/y")


def test_export_refuses_an_existing_bucket_folder_without_force(bucket):
  (bucket / "b" / "model").mkdir(parents=True)
  with pytest.raises(UserError, match="gs://b/model exists; pass --force"):
    export.export_model("gs://b/run", "gs://b/model")


@pytest.mark.slow  # compiles the tiny codec
def test_model_saved_to_and_loaded_from_the_bucket_compresses_like_the_local_one(bucket, tiny_cfg,
                                                                              tiny_params, tiny_model):
  from jaxsemic.codec import api, model_io  # pylint: disable=import-outside-toplevel
  model_id = model_io.save_model("gs://b/models/tiny", tiny_params, tiny_cfg)
  assert (bucket / "b" / "models" / "tiny" / "config.json").is_file()
  with pytest.raises(UserError, match="gs://b/models/tiny exists; pass --force"):
    model_io.save_model("gs://b/models/tiny", tiny_params, tiny_cfg)
  assert model_io.save_model("gs://b/models/tiny", tiny_params, tiny_cfg, force=True) == model_id
  with pytest.raises(UserError, match="model directory not found: gs://b/models/none"):
    model_io.load_model("gs://b/models/none")
  loaded = model_io.load_model("gs://b/models/tiny")
  assert loaded.path == "gs://b/models/tiny" and loaded.model_id == model_id == tiny_model.model_id
  image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  text = np.zeros(tiny_cfg.text_dim, np.float32)
  data, _ = api.compress(loaded, image, text)
  assert data == api.compress(tiny_model, image, text)[0]
  assert api.decompress(loaded, data).shape == image.shape


def test_outputs_go_to_the_bucket_whole_and_never_overwrite_without_force(bucket):
  (bucket / "b").mkdir()
  io.write_bytes("gs://b/out/x.jsc", b"abc")
  assert (bucket / "b" / "out" / "x.jsc").read_bytes() == b"abc"
  with pytest.raises(UserError, match="gs://b/out/x.jsc exists; pass --force"):
    io.write_bytes("gs://b/out/x.jsc", b"new")
  io.write_json("gs://b/out/x.jsc", {"a": 1}, force=True)
  assert (bucket / "b" / "out" / "x.jsc").read_text() == '{\n  "a": 1\n}\n'
  with pytest.raises(RuntimeError):  # a failed writer uploads nothing
    with io.atomic_path("gs://b/out/half.png") as tmp:
      assert not io.is_remote(tmp) and tmp.endswith("half.png")  # the extension kept for savefig & co
      open(tmp, "wb").write(b"partial")
      raise RuntimeError("writer failed")
  assert sorted(os.listdir(bucket / "b" / "out")) == ["x.jsc"]
  with pytest.raises(UserError, match="output gs://b/out is a directory"):
    io.check_output("gs://b/out", force=True)
  with pytest.raises(UserError, match="is the input file"):
    io.check_output("gs://b/out/x.jsc", force=True, inputs=("gs://b/out/x.jsc",))
  with pytest.raises(UserError, match="output bucket does not exist: gs://nobucket"):
    io.check_output("gs://nobucket/x.jsc", force=False)


def test_plot_writes_its_figure_to_the_bucket(bucket, tmp_path):
  pytest.importorskip("matplotlib")
  from jaxsemic.cli import main  # pylint: disable=import-outside-toplevel
  (bucket / "b").mkdir()
  results = tmp_path / "r.json"
  results.write_text('{"name": "x", "results": {"bpp": [0.1, 0.2, 0.4], "psnr-rgb": [27.0, 29.5, 32.5]}}')
  assert main(["plot", str(results), "--out", "gs://b/plots/rd.png"]) == 0
  assert (bucket / "b" / "plots" / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert main(["plot", str(results), "--out", "gs://b/plots/rd.png"]) == 1  # exists, no --force
