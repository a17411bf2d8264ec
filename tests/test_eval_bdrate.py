"""BD-rate / BD-PSNR on synthetic curves whose answer is known in closed form."""

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxsemic.errors import UserError
from jaxsemic.eval import bdrate
from jaxsemic.eval.results import load_results

# A realistic convex anchor curve: PSNR rises ~3 dB per doubling of bpp, with some curvature.
RATE = np.array([0.12, 0.2, 0.33, 0.5, 0.75, 1.1])
PSNR = 27.0 + 4.5 * np.log2(RATE / 0.12) - 0.15 * np.log2(RATE / 0.12) ** 2


@pytest.mark.parametrize("method", bdrate.METHODS)
@pytest.mark.parametrize("factor", [0.8, 1.0, 1.37])
def test_rate_scaled_curve_gives_that_bd_rate(method, factor):
  """Same quality at factor x the bits is a BD-rate of (factor - 1) exactly."""
  got = bdrate.bd_rate(RATE, PSNR, RATE * factor, PSNR, method=method)
  assert got == pytest.approx((factor - 1) * 100, abs=1e-9)


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_quality_shifted_curve_gives_that_bd_psnr(method):
  """0.7 dB better at every rate is a BD-PSNR of +0.7 dB."""
  assert bdrate.bd_quality(RATE, PSNR, RATE, PSNR + 0.7, method=method) == pytest.approx(0.7)


def test_point_order_does_not_matter():
  perm = np.array([3, 0, 5, 1, 4, 2])
  a = bdrate.bd_rate(RATE, PSNR, RATE * 0.9, PSNR + 0.2)
  b = bdrate.bd_rate(RATE[perm], PSNR[perm], RATE[perm] * 0.9, PSNR[perm] + 0.2)
  assert a == pytest.approx(b, abs=1e-9)


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_matches_dense_numerical_integration(method):
  """The closed-form integral equals a dense trapezoid over the same fits (catches a sign or axis slip)."""
  test_rate, test_psnr = RATE * 0.85, PSNR + 0.3 * np.sin(RATE)
  got = bdrate.bd_rate(RATE, PSNR, test_rate, test_psnr, method=method)
  lo, hi = max(PSNR.min(), test_psnr.min()), min(PSNR.max(), test_psnr.max())
  grid = np.linspace(lo, hi, 20001)

  def fit(q, r):
    order = np.argsort(q)
    if method == "cubic":
      return np.polyval(np.polyfit(q, np.log(r), 3), grid)
    from scipy.interpolate import PchipInterpolator
    return PchipInterpolator(q[order], np.log(r[order]))(grid)

  diff = np.trapezoid(fit(test_psnr, test_rate) - fit(PSNR, RATE), grid) / (hi - lo)
  assert got == pytest.approx((np.exp(diff) - 1) * 100, abs=1e-4)
  assert got < 0  # fewer bits and higher quality -> negative BD-rate


def test_restrict_curve_rule():
  rate = np.array([0.1, 0.3, 0.6, 1.0, 1.4, 1.6, 2.5])
  r, q = bdrate.restrict_curve(rate, rate * 10)  # 7 points > 6 -> cut at 1.5 bpp
  np.testing.assert_array_equal(r, rate[:5])
  np.testing.assert_array_equal(q, rate[:5] * 10)
  r, _ = bdrate.restrict_curve(rate[:6], rate[:6])  # 6 points: kept whole
  assert len(r) == 6
  r, _ = bdrate.restrict_curve(rate, rate, max_bpp=None)
  assert len(r) == 7


def test_errors_are_user_errors():
  with pytest.raises(UserError, match="do not overlap"):
    bdrate.bd_rate(RATE, PSNR, RATE, PSNR + 50)
  with pytest.raises(UserError, match="at least 4 points"):
    bdrate.bd_rate(RATE[:3], PSNR[:3], RATE, PSNR)
  with pytest.raises(UserError, match="unknown BD method"):
    bdrate.bd_rate(RATE, PSNR, RATE, PSNR, method="linear")


def _write(path, data):
  path.write_text(json.dumps(data))
  return str(path)


def test_results_layout_errors(tmp_path):
  good = {"name": "x", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0, 32.0]}}
  assert load_results(_write(tmp_path / "g.json", good)).name == "x"
  cases = {
      "expected a JSON object": [1, 2],
      "missing 'results'": {"name": "x", "bpp": [0.1]},
      "no non-empty 'bpp'": {"results": {"psnr-rgb": [30.0]}},
      "has 1 values but 'bpp' has 2": {"results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0]}},
      "no quality list": {"results": {"bpp": [0.1, 0.2]}},
      "numbers only": {"results": {"bpp": [0.1, 0.2], "psnr-rgb": [30.0, "a"]}},
  }
  for message, data in cases.items():
    with pytest.raises(UserError, match=message):
      load_results(_write(tmp_path / "bad.json", data))
  (tmp_path / "broken.json").write_text("{not json")
  with pytest.raises(UserError, match="not valid JSON"):
    load_results(str(tmp_path / "broken.json"))
  with pytest.raises(UserError, match="not found"):
    load_results(str(tmp_path / "missing.json"))


def _curve_file(tmp_path, name, rate, psnr):
  return _write(tmp_path / f"{name}.json",
                {"name": name, "results": {"bpp": list(rate), "psnr-rgb": list(psnr)}})


def test_cli_prints_bd_rate_and_fails_in_one_line(tmp_path):
  anchor = _curve_file(tmp_path, "anchor", RATE, PSNR)
  test = _curve_file(tmp_path, "test", RATE * 1.25, PSNR)
  cmd = [sys.executable, "-m", "jaxsemic.cli", "bdrate", anchor, test]
  out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
  assert "+25.00%" in out
  bad = _write(tmp_path / "bad.json", {"name": "bad", "results": {"psnr-rgb": [1.0]}})
  proc = subprocess.run(cmd[:-1] + [bad], capture_output=True, text=True)
  assert proc.returncode == 1
  assert proc.stderr.count("\n") == 1 and "'bpp'" in proc.stderr
