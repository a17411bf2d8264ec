"""`jaxsemic bench` and `jaxsemic plot` on two small generated photos (no shared data needed)."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from skimage import data

from jaxsemic.cli import main
from jaxsemic.errors import UserError
from jaxsemic.eval.codecs import CODECS, get_codec, rgb_to_ycbcr, ycbcr_to_rgb
from jaxsemic.eval.results import load_results


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
  """Two 192x192 crops of scikit-image's bundled photos, saved as PNG."""
  folder = tmp_path_factory.mktemp("photos")
  Image.fromarray(data.astronaut()[64:256, 128:320]).save(folder / "a.png")
  Image.fromarray(data.chelsea()[40:232, 100:292]).save(folder / "b.png")
  return str(folder)


def _available(name):
  try:
    get_codec(name)
    return True
  except UserError:
    return False


def test_ycbcr_round_trip_is_near_lossless():
  rgb = data.astronaut()[:64, :64]
  err = np.abs(ycbcr_to_rgb(rgb_to_ycbcr(rgb)).astype(int) - rgb).max()
  assert err <= 2


@pytest.mark.parametrize("name", list(CODECS))
def test_codec_round_trip(name):
  if not _available(name):
    pytest.skip(f"{name} not available here")
  codec = CODECS[name]
  rgb = data.astronaut()[:128, :96]
  low, high = codec.settings[0], codec.settings[-1]
  small, large = codec.encode(rgb, low), codec.encode(rgb, high)
  assert len(small) < len(large)
  decoded = codec.decode(large, rgb.shape[:2])
  assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
  mse = np.mean((decoded.astype(float) - rgb) ** 2)
  assert 10 * np.log10(255**2 / mse) > 30


def test_bench_cli_writes_compressai_layout(photos, tmp_path, capsys):
  out = str(tmp_path / "jpeg.json")
  assert main(["bench", "jpeg", "--data", photos, "--out", out, "--settings", "10,50,90",
               "--quiet"]) == 0
  results = load_results(out)
  r = results.results
  assert results.name == "JPEG" and "Pillow" in results.description
  assert {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"} <= set(r)
  assert len(r["bpp"]) == 3 and np.all(np.diff(r["bpp"]) > 0) and np.all(np.diff(r["psnr-rgb"]) > 0)
  assert 0.5 < r["ms-ssim-rgb"][0] < r["ms-ssim-rgb"][2] < 1.0
  per_image = json.load(open(out))["per_image"]
  assert set(per_image) == {"a.png", "b.png"}
  assert np.mean([per_image[k]["bpp"][1] for k in per_image]) == pytest.approx(r["bpp"][1])
  # Never overwrite without --force; the error is one line and nothing is written.
  assert main(["bench", "jpeg", "--data", photos, "--out", out, "--quiet"]) == 1
  assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["bench", "jpeg", "--data", "EMPTY"], "no images"),
    (["bench", "jpeg", "--data", "/nonexistent/folder"], "not a folder"),
    (["bench", "gif", "--data", "EMPTY"], "unknown codec"),
    (["bench", "jpeg", "--data", "PHOTOS", "--settings", "a,b"], "comma-separated numbers"),
])
def test_bench_bad_input_is_one_line(argv, message, tmp_path, photos, capsys):
  argv = [str(tmp_path) if a == "EMPTY" else photos if a == "PHOTOS" else a for a in argv]
  assert main(argv) == 1
  err = capsys.readouterr().err
  assert message in err and err.count("\n") == 1
  assert os.listdir(tmp_path) == []


def _curve(tmp_path, name, bpp, psnr):
  path = tmp_path / f"{name}.json"
  msssim = [1 - 10 ** (-(p - 15) / 10) for p in psnr]
  path.write_text(json.dumps({"name": name, "results": {"bpp": bpp, "psnr-rgb": psnr,
                                                        "ms-ssim-rgb": msssim}}))
  return str(path)


def test_plot_cli_with_bd_rate_legend(tmp_path, capsys):
  bpp = [0.1, 0.2, 0.4, 0.8, 1.2]
  psnr = [27.0, 29.5, 32.5, 35.5, 37.0]
  anchor = _curve(tmp_path, "anchor", bpp, psnr)
  test = _curve(tmp_path, "test", [b * 0.8 for b in bpp], psnr)
  out = str(tmp_path / "rd.png")
  assert main(["plot", anchor, test, "--anchor", anchor, "--out", out]) == 0
  assert "-20.00%" in capsys.readouterr().out
  with open(out, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert main(["plot", test, "--out", out]) == 1  # exists, no --force
  bad = tmp_path / "bad.json"
  bad.write_text(json.dumps({"name": "x", "bpp": [0.1]}))
  assert main(["plot", str(bad), "--out", str(tmp_path / "b.png")]) == 1
  err = capsys.readouterr().err
  assert "missing 'results'" in err and not os.path.exists(tmp_path / "b.png")


def test_bench_with_learned_metric(photos, tmp_path, monkeypatch, capsys):
  """--metrics wiring with random LPIPS weights in a temporary cache; unknown names fail in one line."""
  import jax
  from jaxsemic.eval.metrics import lpips
  from jaxsemic.eval.metrics.weights import save_params
  monkeypatch.setenv("JAXSEMIC_CACHE", str(tmp_path / "cache"))
  lpips.load_lpips.cache_clear()
  x = np.zeros((1, 64, 64, 3), np.float32)
  params = jax.tree.map(np.asarray, lpips.LPIPS("alex").init(jax.random.key(0), x, x)["params"])
  save_params(lpips.lpips_weights_path("alex"), params, source="test")
  out = str(tmp_path / "j.json")
  assert main(["bench", "jpeg", "--data", photos, "--out", out, "--settings", "10,90",
               "--metrics", "lpips-alex", "--quiet"]) == 0
  values = load_results(out).results["lpips-alex"]
  assert values[0] > values[1] > 0  # stronger compression, larger distance
  lpips.load_lpips.cache_clear()
  assert main(["bench", "jpeg", "--data", photos, "--metrics", "psnr2", "--quiet"]) == 1
  assert "unknown metric" in capsys.readouterr().err


def test_bench_workers_give_the_same_numbers(photos, tmp_path, capsys):
  outs = {}
  for jobs in ("1", "2"):
    outs[jobs] = str(tmp_path / f"jpeg-j{jobs}.json")
    assert main(["bench", "jpeg", "--data", photos, "--out", outs[jobs], "--settings", "20,80", "-j", jobs,
                 "--quiet"]) == 0
  one, two = (json.load(open(outs[j])) for j in ("1", "2"))
  for key in ("bpp", "psnr-rgb", "ms-ssim-rgb"):
    assert one["results"][key] == two["results"][key]
    assert all(one["per_image"][n][key] == two["per_image"][n][key] for n in ("a.png", "b.png"))
  assert len(two["results"]["encoding_time"]) == 2
  assert main(["bench", "jpeg", "--data", photos, "-j", "0"]) == 1
  assert "-j/--jobs must be at least 1" in capsys.readouterr().err
