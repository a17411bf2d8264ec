"""Bjøntegaard delta rate and delta quality between two rate–distortion curves.

Classic method (G. Bjøntegaard, VCEG-M33, 2001): fit ln(rate) as a cubic polynomial of quality for
each curve, integrate both fits over the overlapping quality interval; the mean log-rate difference
exp(Δ) - 1 is the BD-rate. BD-quality (BD-PSNR) swaps the axes. The "pchip" variant replaces the
polynomial by a shape-preserving piecewise cubic Hermite interpolant (as in later VCEG/JVET tools),
which does not oscillate between points.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.interpolate import PchipInterpolator

from jaxsemic.errors import UserError

METHODS = ("cubic", "pchip")


def restrict_curve(rate: np.ndarray, quality: np.ndarray, *, max_bpp: float | None = 1.5,
                   max_points: int = 6) -> tuple[np.ndarray, np.ndarray]:
  """Keeps only points with rate <= max_bpp, for curves with more than max_points points.

  This is the convention of ../shared/data/README.md (VTM and long curves limited to bpp <= 1.5) that
  keeps the fit in the range where learned codecs are usually measured. max_bpp=None disables it.
  """
  rate, quality = np.asarray(rate, np.float64), np.asarray(quality, np.float64)
  if max_bpp is None or len(rate) <= max_points:
    return rate, quality
  keep = rate <= max_bpp
  return rate[keep], quality[keep]


def _integral(x: np.ndarray, y: np.ndarray, method: str, what: str) -> Callable[[float, float], float]:
  """Returns F(lo, hi) = ∫ f over [lo, hi] for the fit f of y as a function of x."""
  if method not in METHODS:
    raise UserError(f"unknown BD method {method!r} (one of: {', '.join(METHODS)})")
  order = np.argsort(x)
  x, y = x[order], y[order]
  if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
    raise UserError(f"{what}: curve has non-finite values")
  if method == "cubic":
    if len(x) < 4:
      raise UserError(f"{what}: the cubic BD fit needs at least 4 points, got {len(x)}")
    antiderivative = np.polyint(np.polyfit(x, y, 3))
    return lambda lo, hi: float(np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo))
  if len(x) < 2 or np.any(np.diff(x) <= 0):
    raise UserError(f"{what}: the pchip BD fit needs at least 2 points with distinct values")
  interpolant = PchipInterpolator(x, y, extrapolate=False)
  return lambda lo, hi: float(interpolant.integrate(lo, hi))


def _overlap(a: np.ndarray, b: np.ndarray, axis: str) -> tuple[float, float]:
  """The common interval of two value sets; UserError if they do not overlap."""
  lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
  if not hi > lo:
    raise UserError(f"curves do not overlap in {axis} (anchor {a.min():.3g}..{a.max():.3g}, "
                    f"test {b.min():.3g}..{b.max():.3g})")
  return float(lo), float(hi)


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "cubic") -> float:
  """BD-rate of test vs anchor in percent (negative = test needs fewer bits at equal quality)."""
  ra, qa, rt, qt = (np.asarray(v, np.float64) for v in (anchor_rate, anchor_quality, test_rate,
                                                           test_quality))
  lo, hi = _overlap(qa, qt, "quality")
  fa = _integral(qa, np.log(ra), method, "anchor")
  ft = _integral(qt, np.log(rt), method, "test")
  mean_log_diff = (ft(lo, hi) - fa(lo, hi)) / (hi - lo)
  return float((np.exp(mean_log_diff) - 1.0) * 100.0)


def bd_quality(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "cubic") -> float:
  """BD-PSNR (or BD of any quality metric): mean quality gain of test over anchor at equal rate."""
  ra, qa, rt, qt = (np.asarray(v, np.float64) for v in (anchor_rate, anchor_quality, test_rate,
                                                           test_quality))
  la, lt = np.log(ra), np.log(rt)
  lo, hi = _overlap(la, lt, "log-rate")
  fa = _integral(la, qa, method, "anchor")
  ft = _integral(lt, qt, method, "test")
  return float((ft(lo, hi) - fa(lo, hi)) / (hi - lo))
