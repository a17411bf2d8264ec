"""The `jaxsemic` command line: init / compress / decompress / info, and how it treats bad input."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_MODEL, run_cli
from jaxsemic import cli


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  cfg = tmp_path_factory.mktemp("cfg") / "tiny_plain.py"
  model = dict(TINY_MODEL, fusion="none")
  cfg.write_text(f"import ml_collections\n\ndef get_config():\n  c = ml_collections.ConfigDict()\n"
                 f"  c.model = ml_collections.ConfigDict({model!r})\n  return c\n")
  out = tmp_path_factory.mktemp("m") / "model"
  assert cli.main(["init", "--config", str(cfg), "--out", str(out)]) == 0
  assert cli.main(["init", "--config", str(cfg), "--out", str(out)]) == 1  # exists, no --force
  return str(out)


@pytest.fixture()
def png(tmp_path, photo):
  path = tmp_path / "in.png"
  Image.fromarray(photo).save(path)
  return path


def _compress(model_dir, src, dst, *extra):
  return cli.main(["compress", str(src), str(dst), "--model", model_dir, *extra])


def test_compress_decompress_json(model_dir, png, tmp_path, capsys):
  jsc, out = tmp_path / "a.jsc", tmp_path / "a.png"
  assert _compress(model_dir, png, jsc, "--json") == 0
  info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert {"bytes", "bpp", "estimated_bpp", "seconds", "height", "width"} <= set(info)
  assert info["bytes"] == os.path.getsize(jsc)
  assert cli.main(["decompress", str(jsc), str(out), "--model", model_dir, "--json"]) == 0
  dec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert (dec["height"], dec["width"]) == (info["height"], info["width"])
  assert np.asarray(Image.open(out)).shape == (info["height"], info["width"], 3)
  assert cli.main(["info", str(jsc)]) == 0


def test_existing_output_is_not_overwritten(model_dir, png, tmp_path, capsys):
  jsc = tmp_path / "a.jsc"
  jsc.write_bytes(b"precious")
  assert _compress(model_dir, png, jsc) == 1
  assert jsc.read_bytes() == b"precious"
  assert "--force" in capsys.readouterr().err
  assert _compress(model_dir, png, jsc, "--force") == 0
  assert jsc.read_bytes()[:4] == b"JSC\x1a"


@pytest.mark.parametrize("kind", ["gray", "gray16", "rgba_opaque"])
def test_image_conversions(model_dir, tmp_path, photo, kind, capsys):
  src = tmp_path / f"{kind}.png"
  if kind == "gray":
    Image.fromarray(photo[..., 0]).save(src)
  elif kind == "gray16":
    Image.fromarray(photo[..., 1].astype(np.uint16) * 257).save(src)
  else:
    Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])).save(src)
  assert _compress(model_dir, src, tmp_path / "o.jsc") == 0
  assert cli.main(["decompress", str(tmp_path / "o.jsc"), str(tmp_path / "o.png"), "--model", model_dir]) == 0
  out = np.asarray(Image.open(tmp_path / "o.png"))
  assert out.shape == photo.shape
  if kind == "rgba_opaque":
    assert "alpha channel dropped" in capsys.readouterr().err


def test_transparent_alpha_is_refused_unless_dropped(model_dir, tmp_path, photo, capsys):
  src = tmp_path / "t.png"
  alpha = np.full(photo.shape[:2], 255, np.uint8)
  alpha[0, 0] = 0
  Image.fromarray(np.dstack([photo, alpha])).save(src)
  assert _compress(model_dir, src, tmp_path / "t.jsc") == 1
  assert "transparency" in capsys.readouterr().err and not (tmp_path / "t.jsc").exists()
  assert _compress(model_dir, src, tmp_path / "t.jsc", "--drop-alpha") == 0


def test_bad_inputs_one_line_errors_and_no_partial_files(model_dir, png, tmp_path, capsys):
  junk = tmp_path / "junk.png"
  junk.write_bytes(b"this is not an image")
  assert _compress(model_dir, junk, tmp_path / "j.jsc") == 1
  assert not (tmp_path / "j.jsc").exists()
  assert _compress(model_dir, tmp_path / "missing.png", tmp_path / "m.jsc") == 1
  assert _compress(str(tmp_path / "no_model"), png, tmp_path / "n.jsc") == 1
  good = tmp_path / "g.jsc"
  assert _compress(model_dir, png, good) == 0
  data = good.read_bytes()
  for name, payload in [("trunc.jsc", data[:-9]), ("empty.jsc", b"")]:
    (tmp_path / name).write_bytes(payload)
    assert cli.main(["decompress", str(tmp_path / name), str(tmp_path / "x.png"), "--model", model_dir]) == 1
    assert not (tmp_path / "x.png").exists()
  err = capsys.readouterr().err
  assert "Traceback" not in err
  assert all(line.startswith(("jaxsemic", "note")) for line in err.strip().splitlines())


def test_subprocess_exit_codes(model_dir, tmp_path):
  (tmp_path / "bad.jsc").write_bytes(b"JSC\x1a" + b"\0" * 40)
  r = run_cli("decompress", tmp_path / "bad.jsc", tmp_path / "o.png", "--model", model_dir)
  assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "o.png").exists()
  r = run_cli("frobnicate")
  assert r.returncode == 2


def test_text_guided_model_captions(tmp_path_factory, png, tmp_path, capsys):
  """A concat-fusion model with the default text encoder (MiniLM, D = 384): --caption, --captions, none."""
  cfg = tmp_path_factory.mktemp("cfg") / "tiny_text.py"
  model = dict(TINY_MODEL, text_dim=384)
  cfg.write_text(f"import ml_collections\n\ndef get_config():\n  c = ml_collections.ConfigDict()\n"
                 f"  c.model = ml_collections.ConfigDict({model!r})\n  return c\n")
  mdir = str(tmp_path_factory.mktemp("mt") / "model")
  assert cli.main(["init", "--config", str(cfg), "--out", mdir]) == 0
  a, b, c = tmp_path / "a.jsc", tmp_path / "b.jsc", tmp_path / "c.jsc"
  assert _compress(mdir, png, a, "--caption", "an astronaut in a white suit") == 0
  (tmp_path / "caps.jsonl").write_text(json.dumps({"file": "in.png", "captions": ["a red door"]}) + "\n")
  assert _compress(mdir, png, b, "--captions", str(tmp_path / "caps.jsonl")) == 0
  capsys.readouterr()
  assert _compress(mdir, png, c) == 0
  assert "empty caption" in capsys.readouterr().err
  assert len({a.read_bytes(), b.read_bytes(), c.read_bytes()}) == 3  # the caption reaches the bitstream
  for f in (a, b, c):  # and the decoder needs none
    assert cli.main(["decompress", str(f), str(f) + ".png", "--model", mdir]) == 0
  (tmp_path / "other.jsonl").write_text(json.dumps({"file": "x.png", "captions": ["?"]}) + "\n")
  assert _compress(mdir, png, tmp_path / "d.jsc", "--captions", str(tmp_path / "other.jsonl")) == 1
  assert "no caption for in.png" in capsys.readouterr().err
