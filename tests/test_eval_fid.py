"""FID / KID statistics against direct formulas (scipy sqrtm, explicit pair sums)."""

import numpy as np
import pytest
from scipy import linalg

from jaxsemic.errors import UserError
from jaxsemic.eval.metrics.fid import feature_stats, fid, frechet_distance, kid


def _sets(d=16, n=400, shift=0.3, seed=0):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.5
  b = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.5 + shift
  return a, b


def test_frechet_distance_matches_scipy_sqrtm():
  a, b = _sets()
  (m1, s1), (m2, s2) = feature_stats(a), feature_stats(b)
  want = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
  assert frechet_distance(m1, s1, m2, s2) == pytest.approx(want, rel=1e-8)
  assert fid(a, a) == pytest.approx(0.0, abs=1e-8)
  assert fid(a, b) > fid(a, a + 0.01)


def test_frechet_distance_of_gaussians_closed_form():
  """Diagonal covariances: Σ (μ1-μ2)² + Σ (σ1 - σ2)²."""
  m1, m2 = np.array([0.0, 1.0]), np.array([1.0, 1.0])
  s1, s2 = np.diag([1.0, 4.0]), np.diag([4.0, 9.0])
  assert frechet_distance(m1, s1, m2, s2) == pytest.approx(1.0 + 1.0 + 1.0)


def test_kid_unbiased_mmd_matches_pair_sums():
  a, b = _sets(d=4, n=30)
  k = lambda u, v: (u @ v / 4 + 1) ** 3
  m = len(a)
  xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
  mean, std = kid(a, b, num_subsets=3, subset_size=30)
  assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)
  same_mean, _ = kid(*_sets(d=4, n=300, shift=0.0, seed=1)[:1] * 2, num_subsets=5, subset_size=100)
  assert abs(same_mean) < mean


def test_bad_shapes_are_user_errors():
  with pytest.raises(UserError, match="need features"):
    feature_stats(np.zeros((1, 8)))


def test_fid_with_fewer_samples_than_dimensions_equals_the_covariance_route():
  """The N x N nuclear-norm route (N < D) gives the D x D eigendecomposition's value."""
  rng = np.random.default_rng(2)
  a = rng.normal(size=(12, 40)) @ rng.normal(size=(40, 40))
  b = rng.normal(size=(9, 40)) @ rng.normal(size=(40, 40)) + 0.5
  want = frechet_distance(*feature_stats(a), *feature_stats(b))
  assert fid(a, b) == pytest.approx(want, rel=1e-6)  # eigh of rank-deficient Σ: ~1e-8 noise
  assert fid(a, a) == pytest.approx(0.0, abs=1e-8 * want)
