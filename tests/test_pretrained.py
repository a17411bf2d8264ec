"""Shipped models: the safetensors params format, package-data loading, `jaxsemic demo`."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from conftest import REPO, TINY_MODEL


@pytest.fixture(scope="module")
def packaged(tmp_path_factory, tiny_model_dir):
  """A tiny model converted to package-data form by tools/package_shipped.py's steps."""
  from jaxsemic.codec import model_io, params_file
  src = model_io.load_model(tiny_model_dir)
  out = tmp_path_factory.mktemp("pkg") / "selic-q1"
  out.mkdir()
  params_file.save(str(out / params_file.FILENAME), src.params)
  np.savez(out / "tables.npz", **src.tables)
  shutil.copyfile(os.path.join(tiny_model_dir, "config.json"), out / "config.json")
  return src, str(out)


@pytest.fixture()
def notext_shipped(tmp_path_factory, monkeypatch):
  """A shipped-models folder holding one no-text tiny model as selic-q2 (and no $JAXSEMIC_MODEL)."""
  from jaxsemic import shipped
  from jaxsemic.codec import model_io
  from jaxsemic.models import ModelConfig
  root = tmp_path_factory.mktemp("notext_root")
  cfg = dict(TINY_MODEL, fusion="none")
  model_io.save_model(str(root / "selic-q2"), model_io.init_params(ModelConfig.from_any(cfg)), cfg)
  monkeypatch.setattr(shipped, "ROOT", str(root))
  monkeypatch.delenv("JAXSEMIC_MODEL", raising=False)
  return cfg


def test_params_file_round_trip_and_checks(packaged, tiny_cfg, tmp_path):
  from jaxsemic.codec import model_io, params_file
  from jaxsemic.errors import UserError
  src, path = packaged
  back = model_io.load_model(path)
  assert back.model_id == src.model_id
  for a, b in zip(*(map(np.asarray, __import__("jax").tree.leaves(m.params)) for m in (src, back))):
    np.testing.assert_array_equal(a, b)
  flat = params_file.flatten(src.params)
  key = sorted(flat)[0]
  bad = dict(flat, **{key: np.full_like(flat[key], np.nan)})
  from safetensors.numpy import save_file
  save_file(bad, str(tmp_path / "nan.safetensors"))
  with pytest.raises(UserError, match="non-finite"):
    params_file.load(str(tmp_path / "nan.safetensors"), model_io.abstract_params(tiny_cfg))
  del bad[key]
  save_file(bad, str(tmp_path / "missing.safetensors"))
  with pytest.raises(UserError, match="missing"):
    params_file.load(str(tmp_path / "missing.safetensors"), model_io.abstract_params(tiny_cfg))
  (tmp_path / "trunc.safetensors").write_bytes(open(os.path.join(path, params_file.FILENAME), "rb").read()[:100])
  with pytest.raises(UserError, match="cannot read"):
    params_file.load(str(tmp_path / "trunc.safetensors"), model_io.abstract_params(tiny_cfg))


def test_packaged_model_codes_like_the_original(packaged, photo):
  from jaxsemic.codec import api, model_io
  src, path = packaged
  back = model_io.load_model(path)
  text = np.zeros((TINY_MODEL["text_dim"],), np.float32)
  data_a, _ = api.compress(src, photo, text)
  data_b, _ = api.compress(back, photo, text)
  assert data_a == data_b
  np.testing.assert_array_equal(api.decompress(back, data_a), api.decompress(src, data_a))


def test_find_by_model_id_and_quality_names(packaged, monkeypatch):
  from jaxsemic import shipped
  from jaxsemic.errors import UserError
  src, path = packaged
  monkeypatch.setattr(shipped, "ROOT", os.path.dirname(path))
  assert shipped.available() == ["selic-q1"]
  assert shipped.find_by_model_id(src.model_id) == path
  assert shipped.find_by_model_id(b"\0" * 8) is None
  assert shipped.name_for_quality(1) == "selic-q1"
  with pytest.raises(UserError, match="--quality"):
    shipped.name_for_quality(7)
  with pytest.raises(UserError, match="not in this installation"):
    shipped.model_dir("selic-q3")


def test_demo_command_against_jpeg(tmp_path_factory, monkeypatch, capsys, tmp_path):
  """`jaxsemic demo` on a no-text tiny model: table with a same-size JPEG, files written, no overwrite."""
  from jaxsemic import cli, shipped
  from jaxsemic.codec import model_io
  root = tmp_path_factory.mktemp("root")
  cfg = dict(TINY_MODEL, fusion="none")
  from jaxsemic.models import ModelConfig
  model_io.save_model(str(root / "selic-q2"), model_io.init_params(ModelConfig.from_any(cfg)), cfg)
  monkeypatch.setattr(shipped, "ROOT", str(root))
  out = tmp_path / "demo"
  assert cli.main(["demo", "--out", str(out), "--json"]) == 0
  rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [r["model"] for r in rows] == ["selic-q2"]
  r = rows[0]
  if "jpeg_bytes" in r:  # a random model makes big files: JPEG fits under them
    assert r["jpeg_bytes"] <= r["bytes"]
  names = sorted(os.listdir(out))
  assert names[:2] == ["astronaut_selic-q2.jsc", "astronaut_selic-q2.png"]
  assert cli.main(["demo", "--out", str(out)]) == 1
  assert "exists" in capsys.readouterr().err
  assert cli.main(["demo", "--quality", "9"]) == 1


def test_jpeg_same_size_is_largest_fitting(photo):
  from jaxsemic.commands.demo import jpeg_same_size
  data, q = jpeg_same_size(photo, 2000)
  assert len(data) <= 2000
  bigger = jpeg_same_size(photo, 10 ** 7)
  assert bigger[1] == 95
  assert jpeg_same_size(photo, 10) is None


def test_shipped_models_fit_package_limits():
  """Each shipped file ≤ 16 MiB; each shipped model loads and its model id matches its config."""
  from jaxsemic import shipped
  from jaxsemic.codec import model_io
  for name in shipped.available():
    d = shipped.model_dir(name)
    for f in os.listdir(d):
      assert os.path.getsize(os.path.join(d, f)) <= 16 * 2 ** 20, f
    m = model_io.load_model(d)
    assert model_io.compute_model_id(m.cfg.to_dict(), m.params, m.tables) == m.model_id
  assert os.path.isdir(os.path.join(REPO, "jaxsemic", "shipped"))


def test_python_api_matches_cli_without_caption(tmp_path_factory, photo, tmp_path, monkeypatch):
  """jaxsemic.compress with no caption writes the CLI's file (empty caption's vector), and decodes by model id."""
  import jaxsemic
  from jaxsemic import cli, shipped
  from jaxsemic.codec import model_io
  from jaxsemic.models import ModelConfig
  from PIL import Image
  png_path = str(tmp_path / "in.png")
  Image.fromarray(photo).save(png_path)
  root = tmp_path_factory.mktemp("api_root")
  cfg = dict(TINY_MODEL, text_dim=384)
  model_io.save_model(str(root / "selic-q2"), model_io.init_params(ModelConfig.from_any(cfg)), cfg)
  monkeypatch.setattr(shipped, "ROOT", str(root))
  out = tmp_path / "cli.jsc"
  assert cli.main(["compress", png_path, str(out), "--model", str(root / "selic-q2")]) == 0
  model = jaxsemic.pretrained("selic-q2")
  data = jaxsemic.compress(model, png_path)
  assert data == out.read_bytes()
  assert jaxsemic.compress(model, png_path, caption="a red door") != data
  image = jaxsemic.decompress(data)
  np.testing.assert_array_equal(image, jaxsemic.decompress(data, model_io.load_model(str(root / "selic-q2"))))
  assert image.shape == jaxsemic.api._image(png_path).shape


def test_cli_defaults_to_shipped_models(notext_shipped, tmp_path_factory, photo, tmp_path, capsys):
  """compress without --model uses selic-q{--quality}; decompress without --model finds it by model id."""
  from PIL import Image
  from jaxsemic import cli
  from jaxsemic.codec import model_io
  from jaxsemic.models import ModelConfig
  cfg = notext_shipped
  Image.fromarray(photo).save(tmp_path / "in.png")
  assert cli.main(["compress", str(tmp_path / "in.png"), str(tmp_path / "a.jsc")]) == 0
  assert cli.main(["compress", str(tmp_path / "in.png"), str(tmp_path / "b.jsc"), "--model", "selic-q2"]) == 0
  assert (tmp_path / "a.jsc").read_bytes() == (tmp_path / "b.jsc").read_bytes()
  assert cli.main(["decompress", str(tmp_path / "a.jsc"), str(tmp_path / "a.png")]) == 0
  capsys.readouterr()
  assert cli.main(["compress", str(tmp_path / "in.png"), str(tmp_path / "c.jsc"), "--quality", "1"]) == 1
  assert "not in this installation" in capsys.readouterr().err
  other = str(tmp_path_factory.mktemp("other") / "m")
  model_io.save_model(other, model_io.init_params(ModelConfig.from_any(cfg), seed=3), cfg)
  assert cli.main(["compress", str(tmp_path / "in.png"), str(tmp_path / "d.jsc"), "--model", other]) == 0
  assert cli.main(["decompress", str(tmp_path / "d.jsc"), str(tmp_path / "d.png")]) == 1
  assert "not a shipped model" in capsys.readouterr().err
  assert not (tmp_path / "d.png").exists()


def test_version_flag(capsys):
  from jaxsemic import __version__, cli
  assert cli.main(["--version"]) == 0
  assert capsys.readouterr().out.strip() == f"jaxsemic {__version__}"


def test_decompress_output_must_be_png_and_workdir_as_model(tmp_path, capsys):
  from jaxsemic import cli
  from jaxsemic.codec import model_io
  from jaxsemic.errors import UserError
  (tmp_path / "a.jsc").write_bytes(b"x")
  assert cli.main(["decompress", str(tmp_path / "a.jsc"), str(tmp_path / "a.jpg"), "--model", "selic-q1"]) == 1
  assert "ending in .png" in capsys.readouterr().err and not (tmp_path / "a.jpg").exists()
  run = tmp_path / "run"
  (run / "checkpoints").mkdir(parents=True)
  (run / "config.json").write_text("{}")
  with pytest.raises(UserError, match="training run folder: use .*model"):
    model_io.load_model(str(run))


def test_folder_mode_compress_and_decompress(notext_shipped, photo, tmp_path, capsys, monkeypatch):
  """compress DIR OUT_DIR / decompress DIR OUT_DIR: every image, one summary, no overwrite, same bytes as one by one."""
  from PIL import Image
  from jaxsemic import cli
  src = tmp_path / "imgs"
  src.mkdir()
  Image.fromarray(photo).save(src / "a.png")
  Image.fromarray(photo[:, ::-1]).save(src / "b.png")
  (src / "notes.txt").write_text("not an image")
  assert cli.main(["compress", str(src), str(tmp_path / "jsc"), "--json"]) == 0
  summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert summary["files"] == 2 and sorted(os.listdir(tmp_path / "jsc")) == ["a.jsc", "b.jsc"]
  assert cli.main(["compress", str(src / "a.png"), str(tmp_path / "one.jsc")]) == 0
  assert (tmp_path / "one.jsc").read_bytes() == (tmp_path / "jsc" / "a.jsc").read_bytes()
  assert cli.main(["decompress", str(tmp_path / "jsc"), str(tmp_path / "png")]) == 0
  assert sorted(os.listdir(tmp_path / "png")) == ["a.png", "b.png"]
  assert "2 files" in capsys.readouterr().out
  assert cli.main(["compress", str(src), str(tmp_path / "jsc")]) == 1  # exists: nothing written
  assert "exists; pass --force" in capsys.readouterr().err
  assert cli.main(["compress", str(src), str(src)]) == 1
  (tmp_path / "empty").mkdir()
  assert cli.main(["decompress", str(tmp_path / "empty"), str(tmp_path / "o")]) == 1
  assert "no .jsc files" in capsys.readouterr().err
  monkeypatch.chdir(tmp_path)  # a gs:// output must not become a local folder named gs:
  assert cli.main(["compress", str(src), "gs://bucket/out"]) == 1
  assert "local folders only" in capsys.readouterr().err and not (tmp_path / "gs:").exists()
