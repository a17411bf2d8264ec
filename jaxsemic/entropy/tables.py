"""Integer coding tables, built once at export time from the trained parameters.

Each table is an integer probability mass function over a contiguous range of symbols, followed by one escape
symbol that carries the tail mass; all entries are >= 1 and sum to 2**PRECISION. The tables are stored with the
model, so encoder and decoder use the same integers on any machine (computed in float64 on the host, never on
the accelerator).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from jaxsemic.entropy import factorized
from jaxsemic.errors import UserError

PRECISION = 16
TAIL_MASS = 1e-9
MAX_SUPPORT = 1 << 16  # a table spanning more symbols than this comes from broken parameters


@dataclasses.dataclass(frozen=True)
class CodingTables:
  """A stack of pmfs: `pmf[k, :length[k]]` codes symbols offset[k] .. offset[k] + length[k] - 2, then escape."""

  pmf: np.ndarray  # int32 [T, L]
  length: np.ndarray  # int32 [T]
  offset: np.ndarray  # int32 [T]

  def as_dict(self, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}_pmf": self.pmf, f"{prefix}_length": self.length, f"{prefix}_offset": self.offset}

  @classmethod
  def from_dict(cls, d: Mapping[str, np.ndarray], prefix: str) -> "CodingTables":
    return cls(np.asarray(d[f"{prefix}_pmf"], np.int32), np.asarray(d[f"{prefix}_length"], np.int32),
               np.asarray(d[f"{prefix}_offset"], np.int32))


def quantize_pmf(probs: np.ndarray, tail: float, precision: int = PRECISION) -> np.ndarray:
  """Float pmf (+ tail mass as the escape symbol) -> int32 counts >= 1 summing exactly to 2**precision."""
  total = 1 << precision
  p = np.concatenate([np.asarray(probs, np.float64), [max(tail, 0.0)]])
  p = np.maximum(p, 0.0)
  p = p / p.sum()
  counts = np.maximum(1, np.round(p * total)).astype(np.int64)
  diff = total - counts.sum()
  order = np.argsort(-p, kind="stable")
  while diff != 0:  # hand the rounding error to the most probable symbols, never dropping one below 1
    for i in order:
      if diff == 0:
        break
      if diff > 0:
        counts[i] += 1
        diff -= 1
      elif counts[i] > 1:
        counts[i] -= 1
        diff += 1
  return counts.astype(np.int32)


def _stack(pmfs: list[np.ndarray], offsets: list[int]) -> CodingTables:
  lengths = np.array([len(p) for p in pmfs], np.int32)
  out = np.zeros((len(pmfs), int(lengths.max())), np.int32)
  for k, p in enumerate(pmfs):
    out[k, :len(p)] = p
  return CodingTables(out, lengths, np.array(offsets, np.int32))


def gaussian_tables(scale_table: np.ndarray, tail_mass: float = TAIL_MASS) -> CodingTables:
  """One table per scale: symbols -c..c with c = ceil(s * Phi^-1(1 - tail/2))."""
  multiplier = _inverse_std_cdf_upper(tail_mass / 2)
  pmfs, offsets = [], []
  for s in np.asarray(scale_table, np.float64):
    if not (np.isfinite(s) and 0 < s * multiplier < MAX_SUPPORT / 2):
      raise UserError(f"scale table entry {s} is not a usable Gaussian scale")
    c = int(math.ceil(s * multiplier))
    v = np.arange(-c, c + 1, dtype=np.float64)
    upper = np.array([_std_cdf((x + 0.5) / s) for x in v])
    lower = np.array([_std_cdf((x - 0.5) / s) for x in v])
    pmf = upper - lower
    tail = 2 * _std_cdf((-c - 0.5) / s)
    pmfs.append(quantize_pmf(pmf, tail))
    offsets.append(-c)
  return _stack(pmfs, offsets)


def factorized_tables(density: Mapping[str, np.ndarray], tail_mass: float = TAIL_MASS) -> CodingTables:
  """One table per channel of the deep factorized prior, over [floor(q_tail), ceil(q_{1-tail})]."""
  params = {k: np.asarray(v, np.float64) for k, v in density.items()}
  for k, v in params.items():
    if not np.isfinite(v).all():
      raise UserError(f"entropy bottleneck parameter {k} has {int((~np.isfinite(v)).sum())} non-finite values")
  channels = params["matrix0"].shape[0]
  target = math.log(tail_mass / 2) - math.log1p(-tail_mass / 2)  # logit(tail/2)
  lo = _bisect(params, np.full(channels, target), channels)
  hi = _bisect(params, np.full(channels, -target), channels)
  pmfs, offsets = [], []
  for c in range(channels):
    p_c = {k: v[c:c + 1] for k, v in params.items()}
    if not (np.isfinite(lo[c]) and np.isfinite(hi[c]) and hi[c] - lo[c] < MAX_SUPPORT):
      raise UserError(f"entropy bottleneck channel {c}: its coding range [{lo[c]:.3g}, {hi[c]:.3g}] is not "
                      f"bounded within {MAX_SUPPORT} symbols (broken parameters)")
    mn, mx = int(math.floor(lo[c])), int(math.ceil(hi[c]))
    v = np.arange(mn, mx + 1, dtype=np.float64)[None]
    lower = factorized.logits_cdf(p_c, v - 0.5, xp=np)[0]
    upper = factorized.logits_cdf(p_c, v + 0.5, xp=np)[0]
    pmf = _sigmoid(upper) - _sigmoid(lower)
    tail = _sigmoid(lower[0]) + _sigmoid(-upper[-1])
    pmfs.append(quantize_pmf(pmf, tail))
    offsets.append(mn)
  return _stack(pmfs, offsets)


def _bisect(params: Mapping[str, np.ndarray], target: np.ndarray, channels: int) -> np.ndarray:
  """Solves logits_cdf(x) = target per channel (the function is monotone increasing)."""
  lo, hi = np.full(channels, -1.0), np.full(channels, 1.0)
  for _ in range(60):  # widen until bracketed
    f_lo = factorized.logits_cdf(params, lo[:, None], xp=np)[:, 0]
    f_hi = factorized.logits_cdf(params, hi[:, None], xp=np)[:, 0]
    if np.all(f_lo <= target) and np.all(f_hi >= target):
      break
    lo = np.where(f_lo > target, lo * 2, lo)
    hi = np.where(f_hi < target, hi * 2, hi)
  for _ in range(100):
    mid = (lo + hi) / 2
    f = factorized.logits_cdf(params, mid[:, None], xp=np)[:, 0]
    lo, hi = np.where(f < target, mid, lo), np.where(f < target, hi, mid)
  return (lo + hi) / 2


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 0.5 * (1 + np.tanh(0.5 * np.asarray(x)))


def _std_cdf(x: float) -> float:
  return 0.5 * math.erfc(-x / math.sqrt(2))


def _inverse_std_cdf_upper(q: float) -> float:
  """x with P(N(0,1) > x) = q, by bisection on erfc (no scipy needed)."""
  lo, hi = 0.0, 40.0
  for _ in range(200):
    mid = (lo + hi) / 2
    if 0.5 * math.erfc(mid / math.sqrt(2)) > q:
      lo = mid
    else:
      hi = mid
  return (lo + hi) / 2
