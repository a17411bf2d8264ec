"""Fréchet distance (FID) and kernel inception distance (KID) from feature matrices.

The statistics are computed in float64 NumPy (covariances of 2048-d features need it). Features come
from `jaxsemic.eval.metrics.inception.load_inception()` (the FID InceptionV3) or any other network.
"""

from __future__ import annotations

import numpy as np

from jaxsemic.errors import UserError


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean [D] and unbiased covariance [D,D] of features [N,D] (N >= 2)."""
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or f.shape[0] < 2:
    raise UserError(f"need features [N>=2, D], got shape {f.shape}")
  return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """‖μ1-μ2‖² + tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½) (Dowson & Landau 1982; Heusel et al. 2017).

  tr (Σ1 Σ2)^½ = Σ √λ_i of the symmetric PSD matrix Σ1^½ Σ2 Σ1^½, which avoids a non-symmetric sqrtm.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  w, v = np.linalg.eigh(s1)
  root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  middle = root1 @ s2 @ root1
  trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
  """FID between two feature sets [N1,D] and [N2,D].

  With fewer samples than dimensions (FID on Kodak patches: 192 vs 2048) the D x D route costs two
  2048-d eigendecompositions; the same value comes from the N1 x N2 matrix instead: with centred
  features A_i, Σ_i = A_iᵀA_i / (N_i - 1), the non-zero eigenvalues of Σ1 Σ2 are those of
  M Mᵀ / ((N1-1)(N2-1)) for M = A1 A2ᵀ, so tr (Σ1 Σ2)^½ = ‖M‖_* / √((N1-1)(N2-1)) (nuclear norm).
  """
  f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  if max(len(f1), len(f2)) > f1.shape[-1]:
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))
  (mu1, _), (mu2, _) = feature_stats(f1), feature_stats(f2)
  a1, a2 = f1 - mu1, f2 - mu2
  n1, n2 = len(f1) - 1, len(f2) - 1
  trace_sqrt = np.sum(np.linalg.svd(a1 @ a2.T, compute_uv=False)) / np.sqrt(n1 * n2)
  value = np.sum((mu1 - mu2) ** 2) + np.sum(a1 * a1) / n1 + np.sum(a2 * a2) / n2 - 2 * trace_sqrt
  return float(max(value, 0.0))  # >= 0; rounding can give -1e-13 for identical sets


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD² with the cubic polynomial kernel k(a,b) = (a·b / D + 1)³."""
  d = x.shape[1]
  kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
  m, n = len(x), len(y)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) /
               (n * (n - 1)) - 2 * kxy.mean())


def kid(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """KID (Bińkowski et al. 2018): mean and std of unbiased MMD² over random subsets."""
  x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  size = min(subset_size, len(x), len(y))
  if size < 2:
    raise UserError("KID needs at least 2 features in each set")
  rng = np.random.default_rng(seed)
  values = [_mmd2_unbiased(x[rng.choice(len(x), size, replace=False)],
                           y[rng.choice(len(y), size, replace=False)]) for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))
