"""Damaged model directories and broken weights (issue 15): one-line UserErrors naming the tensor or the file."""

import json
import shutil
import time

import jax
import numpy as np
import pytest

from jaxsemic.codec import model_io
from jaxsemic.entropy import tables as tables_lib
from jaxsemic.errors import UserError


def _copy(src, tmp_path, name="m"):
  dst = tmp_path / name
  shutil.copytree(src, dst)
  return dst


def test_intact_model_directory_loads(tiny_model_dir, tiny_model):
  assert model_io.load_model(tiny_model_dir).model_id == tiny_model.model_id


def test_damaged_tables_or_config_are_named(tiny_model_dir, tmp_path):
  d = _copy(tiny_model_dir, tmp_path, "tables")
  with np.load(d / "tables.npz") as z:
    tables = {k: z[k] for k in z.files}
  tables["y_pmf"] = np.zeros_like(tables["y_pmf"])  # zeroed tables, a valid npz
  np.savez(d / "tables.npz", **tables)
  with pytest.raises(UserError, match="is damaged"):
    model_io.load_model(str(d))
  d = _copy(tiny_model_dir, tmp_path, "config")
  meta = json.loads((d / "config.json").read_text())
  meta["model_id"] = "00" * 8
  (d / "config.json").write_text(json.dumps(meta))
  with pytest.raises(UserError, match="is damaged.*config.json"):
    model_io.load_model(str(d))
  d = _copy(tiny_model_dir, tmp_path, "zip")
  raw = bytearray((d / "tables.npz").read_bytes())
  raw[len(raw) // 2] ^= 0x01
  (d / "tables.npz").write_bytes(bytes(raw))
  with pytest.raises(UserError):
    model_io.load_model(str(d))


def test_non_finite_params_are_refused_naming_the_tensor(tiny_params, tiny_cfg, tmp_path):
  bad = jax.tree_util.tree_map_with_path(
      lambda p, a: np.where(np.arange(np.size(a)).reshape(np.shape(a)) == 0, np.nan, a)
      if "g_s" in jax.tree_util.keystr(p) else np.asarray(a), tiny_params)
  with pytest.raises(UserError, match=r"parameter .*g_s.* has \d+ non-finite values"):
    model_io.save_model(str(tmp_path / "nan"), bad, tiny_cfg)
  assert not (tmp_path / "nan").exists()


def test_table_search_refuses_broken_density_quickly(tiny_params):
  density = {k: np.asarray(v) for k, v in tiny_params["z_prior"].items()}
  for value in (np.inf, np.nan):
    d = dict(density)
    k = sorted(d)[0]
    d[k] = d[k].copy()
    d[k].flat[0] = value
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="non-finite"):
      tables_lib.factorized_tables(d)
    assert time.perf_counter() - t0 < 1.0
  with pytest.raises(UserError, match="scale"):
    tables_lib.gaussian_tables(np.array([0.11, np.inf]))


def test_config_that_no_longer_matches_the_params_is_refused(tiny_model_dir, tmp_path):
  d = _copy(tiny_model_dir, tmp_path, "n")
  meta = json.loads((d / "config.json").read_text())
  meta["model"]["N"] = meta["model"]["N"] + 8
  (d / "config.json").write_text(json.dumps(meta))
  with pytest.raises(UserError) as e:
    model_io.load_model(str(d))
  assert "\n" not in str(e.value)


def test_truncated_params_file_is_one_line(tiny_model_dir, tmp_path):
  """A truncated orbax params/ file: the CLI prints one error line, not the reads' "Event loop is closed" noise."""
  from conftest import run_cli
  from PIL import Image
  d = _copy(tiny_model_dir, tmp_path, "truncated")
  big = max((p for p in (d / "params").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
  big.write_bytes(big.read_bytes()[:big.stat().st_size // 2])
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
  r = run_cli("compress", tmp_path / "a.png", tmp_path / "a.jsc", "--model", d)
  assert r.returncode != 0 and not (tmp_path / "a.jsc").exists()
  assert r.stderr.count("\n") == 1 and r.stderr.startswith("jaxsemic compress: error: cannot load model"), r.stderr
