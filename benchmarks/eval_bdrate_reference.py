"""Reproduces the Kodak BD-rates vs VTM listed in ../shared/data/README.md from CompressAI's files.

Run from the repository root:  python benchmarks/eval_bdrate_reference.py [--data ../shared/data]
Prints each BD-rate (classic cubic method, VTM and curves with > 6 points restricted to bpp <= 1.5),
the listed value and the difference; exits 1 if any differs by more than 0.2 percentage points.
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxsemic.commands.bdrate import compare
from jaxsemic.eval.results import load_results

# file in rd_reference/compressai/kodak -> BD-rate vs VTM listed in shared/data/README.md (percent).
LISTED = {
    "jpeg.json": 260.4,
    "webp.json": 89.9,
    "bpg_444_x265_ycbcr.json": 28.4,
    "av1.json": 19.2,
    "paper-bmshj2018-hyperprior.json": 37.2,
    "paper-mbt2018.json": 13.8,
    "compressai-cheng2020-attn_mse_cuda.json": 5.4,
    "paper-minnen2020-cc10_mse.json": 1.1,
    "paper-elic2022_mse.json": -7.0,
}
TOLERANCE = 0.2


def main() -> int:
  """Prints the comparison table; non-zero exit when a value is off."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default=os.path.join("..", "shared", "data"))
  args = parser.parse_args()
  kodak = os.path.join(args.data, "rd_reference", "compressai", "kodak")
  anchor = load_results(os.path.join(kodak, "vtm.json"))
  worst = 0.0
  print(f"{'file':<42} {'cubic':>9} {'pchip':>9} {'listed':>8} {'diff':>6}")
  for file, listed in LISTED.items():
    test = load_results(os.path.join(kodak, file))
    cubic, _ = compare(anchor, test, "psnr-rgb", "cubic", 1.5, 6)
    pchip, _ = compare(anchor, test, "psnr-rgb", "pchip", 1.5, 6)
    worst = max(worst, abs(cubic - listed))
    print(f"{file:<42} {cubic:>+8.2f}% {pchip:>+8.2f}% {listed:>+7.1f}% {cubic - listed:>+6.2f}")
  ok = worst <= TOLERANCE
  print(f"largest |cubic - listed| = {worst:.3f} points -> {'OK' if ok else 'FAIL'} "
        f"(tolerance ±{TOLERANCE}; listed values are rounded to 0.1)")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
