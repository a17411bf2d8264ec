"""`jaxsemic eval` with the session's tiny random SELIC on two small generated photos."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from skimage import data

from jaxsemic.cli import main
from jaxsemic.codec import api
from jaxsemic.codec.model_io import load_model
from jaxsemic.eval.results import load_results


@pytest.fixture(scope="module")
def plain_model_dir(tmp_path_factory, tiny_params):
  """The session's tiny model without its text branch (no text encoder needed to evaluate it)."""
  from conftest import TINY_MODEL
  from jaxsemic.codec.model_io import save_model
  path = str(tmp_path_factory.mktemp("plain") / "model")
  save_model(path, {k: v for k, v in tiny_params.items() if k != "fusion"}, dict(TINY_MODEL, fusion="none"))
  return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
  folder = tmp_path_factory.mktemp("eval_photos")
  Image.fromarray(data.astronaut()[64:128, 128:256]).save(folder / "a.png")
  Image.fromarray(data.coffee()[40:104, 100:228]).save(folder / "b.png")
  return str(folder)


def test_eval_writes_real_bytes_and_metrics(plain_model_dir, photos, tmp_path, capsys):
  out = str(tmp_path / "r.json")
  assert main(["eval", "--model", plain_model_dir, "--model", plain_model_dir, "--data", photos,
               "--out", out, "--quiet"]) == 0
  results = load_results(out)
  r = results.results
  assert len(r["bpp"]) == 2 and r["bpp"][0] == r["bpp"][1]  # one point per --model
  assert "ms-ssim-rgb" not in r  # 64 px images: MS-SSIM undefined, left out rather than faked
  doc = json.load(open(out))
  assert doc["models"][0]["params"] > 1000
  # The reported bpp is the real .jsc size, and PSNR is that of the decoded bytes.
  model = load_model(plain_model_dir)
  image = np.asarray(Image.open(os.path.join(photos, "a.png")))
  blob, _ = api.compress(model, image)
  decoded = api.decompress(model, blob).astype(np.float64)
  row = doc["per_image"][os.path.abspath(plain_model_dir)]["a.png"]
  assert row["bpp"] == pytest.approx(len(blob) * 8 / image[..., 0].size)
  assert row["psnr-rgb"] == pytest.approx(10 * np.log10(255**2 / np.mean((decoded - image) ** 2)),
                                          abs=1e-3)
  assert "bpp" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["eval", "--model", "MODEL", "--data", "EMPTY"], "no images"),
    (["eval", "--model", "/nonexistent/model", "--data", "PHOTOS"], "model directory not found"),
    (["eval", "--model", "EMPTY", "--data", "PHOTOS"], "not a jaxsemic model directory"),
])
def test_eval_bad_input_is_one_line(argv, message, tmp_path, photos, plain_model_dir, capsys):
  subs = {"EMPTY": str(tmp_path), "PHOTOS": photos, "MODEL": plain_model_dir}
  assert main([subs.get(a, a) for a in argv] + ["--out", str(tmp_path / "r.json")]) == 1
  err = capsys.readouterr().err
  assert message in err and err.count("\n") == 1
  assert not os.path.exists(tmp_path / "r.json")


def test_eval_fid_kid_are_reconstructions_vs_originals(plain_model_dir, photos, tmp_path):
  """eval --metrics fid,kid equals FID/KID of the decoded images' patches vs the originals'."""
  from jaxsemic.eval.fid_sets import InceptionFeatures, PatchMode, set_scores
  from jaxsemic.eval.metrics.inception import inception_weights_path
  if not os.path.isfile(inception_weights_path()):
    pytest.skip("needs tools/convert_fid_inception.py")
  out = str(tmp_path / "r.json")
  assert main(["eval", "--model", plain_model_dir, "--data", photos, "--out", out, "--quiet",
               "--metrics", "fid,kid", "--fid-patches", "64", "--kid-subset-size", "4"]) == 0
  r = load_results(out).results
  model, mode, extract = load_model(plain_model_dir), PatchMode(64), InceptionFeatures()
  real, fake = [], []
  for name in ("a.png", "b.png"):
    image = np.asarray(Image.open(os.path.join(photos, name)))
    real.append(extract(mode.split(image)))
    fake.append(extract(mode.split(api.decompress(model, api.compress(model, image)[0]))))
  want = set_scores(np.concatenate(real), np.concatenate(fake), kid_subset_size=4)
  assert len(np.concatenate(real)) == 4  # 64x128 photos: 2 patches each, no shifted grid fits
  assert r["fid"][0] == pytest.approx(want["fid"], rel=1e-6) and r["fid"][0] > 0
  assert r["kid"][0] == pytest.approx(want["kid"], rel=1e-6)


def test_eval_unknown_metric_lists_all(plain_model_dir, photos, tmp_path, capsys):
  assert main(["eval", "--model", plain_model_dir, "--data", photos, "--metrics", "fid,foo",
               "--out", str(tmp_path / "r.json")]) == 1
  err = capsys.readouterr().err
  assert "unknown metric 'foo'" in err and "kid" in err and err.count("\n") == 1
