"""PSNR / SSIM / MS-SSIM in JAX against scikit-image and pytorch_msssim (what CompressAI uses)."""

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxsemic.eval.metrics.msssim import MSSSIM_WEIGHTS, ms_ssim, ssim
from jaxsemic.eval.metrics.psnr import psnr


def _pairs():
  """Three photo pairs (one odd-sized) with different distortions, float32 in [0, 255]."""
  rng = np.random.default_rng(0)
  a = data.astronaut()[:256, :320].astype(np.float32)
  b = data.chelsea()[:201, :257].astype(np.float32)  # odd sides exercise pooling pads
  c = data.coffee()[:192, :192].astype(np.float32)
  noisy = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).round().astype(np.float32)
  quantised = (np.round(b / 24) * 24).astype(np.float32)
  shifted = np.clip(np.roll(c, 1, axis=1) * 0.9 + 10, 0, 255).astype(np.float32)
  return [(a, noisy), (b, quantised), (c, shifted)]


PAIRS = _pairs()


@pytest.mark.parametrize("i", range(len(PAIRS)))
def test_psnr_matches_skimage(i):
  x, y = PAIRS[i]
  want = peak_signal_noise_ratio(x.astype(np.float64), y.astype(np.float64), data_range=255)
  assert float(psnr(x[None], y[None], 255.0)[0]) == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("i", range(len(PAIRS)))
def test_ssim_matches_skimage_gaussian(i):
  """One scale: skimage with the Gaussian 11/1.5 window and population covariances."""
  x, y = PAIRS[i]
  want = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                               data_range=255, channel_axis=-1)
  assert float(ssim(x[None], y[None], data_range=255.0)[0]) == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("i", range(len(PAIRS)))
def test_ms_ssim_matches_pytorch_msssim(i):
  torch = pytest.importorskip("torch")
  reference = pytest.importorskip("pytorch_msssim")
  x, y = PAIRS[i]
  to_t = lambda v: torch.from_numpy(v).permute(2, 0, 1)[None]
  want = float(reference.ms_ssim(to_t(x), to_t(y), data_range=255))
  got = float(ms_ssim(x[None], y[None], data_range=255.0)[0])
  assert got == pytest.approx(want, abs=1e-5)
  # The test can fail: other scale weights move the value far beyond the tolerance.
  wrong = (0.2, 0.2, 0.2, 0.2, 0.2)
  assert abs(float(ms_ssim(x[None], y[None], data_range=255.0, weights=wrong)[0]) - want) > 1e-3


def test_batch_and_identity():
  x, y = PAIRS[0]
  batch_x, batch_y = np.stack([x, x]), np.stack([y, x])
  values = np.asarray(ms_ssim(batch_x, batch_y, data_range=255.0))
  assert values[1] == pytest.approx(1.0, abs=1e-6) and values[0] < 0.99
  assert np.isinf(float(psnr(x[None], x[None], 255.0)[0]))
  assert sum(MSSSIM_WEIGHTS) == pytest.approx(1.0, abs=1e-3)


def test_too_small_for_five_scales():
  x = np.zeros((1, 160, 200, 3), np.float32)
  with pytest.raises(ValueError, match="at least 161 px"):
    ms_ssim(x, x)
