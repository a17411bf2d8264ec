"""Checks a `jaxsemic bench` curve against CompressAI's published curve of the same codec.

  jaxsemic bench jpeg --data ../shared/data/kodak --out /tmp/jpeg.json
  python benchmarks/eval_bench_vs_compressai.py /tmp/jpeg.json ../shared/data/rd_reference/compressai/kodak/jpeg.json

For each of our points inside the reference's bpp range, the reference PSNR (and MS-SSIM) is
interpolated at our bpp (piecewise linear in log bpp) and the difference printed; exits 1 if any
|ΔPSNR| exceeds --tolerance (default 0.3 dB).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from jaxsemic.eval.results import load_results


def main() -> int:
  """Prints the per-point table and the verdict."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("ours")
  parser.add_argument("reference")
  parser.add_argument("--tolerance", type=float, default=0.3)
  args = parser.parse_args()
  ours, ref = load_results(args.ours), load_results(args.reference)
  bpp, psnr = ours.curve("psnr-rgb")
  rbpp, rpsnr = ref.curve("psnr-rgb")
  order = np.argsort(rbpp)
  has_msssim = "ms-ssim-rgb" in ours.results and "ms-ssim-rgb" in ref.results
  print(f"{ours.name} ({ours.description})\n  vs {ref.name} ({ref.description})")
  print(f"{'bpp':>7} {'PSNR':>7} {'ref PSNR':>9} {'dPSNR':>7}" + ("  MS-SSIM  ref    dMS-SSIM" if has_msssim else ""))
  diffs = []
  for i, (b, p) in enumerate(zip(bpp, psnr)):
    if not rbpp.min() <= b <= rbpp.max():
      print(f"{b:7.3f} {p:7.2f}   (outside reference bpp range)")
      continue
    rp = np.interp(np.log(b), np.log(rbpp[order]), rpsnr[order])
    diffs.append(p - rp)
    line = f"{b:7.3f} {p:7.2f} {rp:9.2f} {p - rp:+7.3f}"
    if has_msssim:
      m = ours.results["ms-ssim-rgb"][i]
      rm = np.interp(np.log(b), np.log(rbpp[order]), np.asarray(ref.results["ms-ssim-rgb"])[order])
      line += f"  {m:.4f}  {rm:.4f}  {m - rm:+.4f}"
    print(line)
  if not diffs:
    print("no point of ours lies in the reference bpp range")
    return 1
  worst = float(np.max(np.abs(diffs)))
  ok = worst <= args.tolerance
  print(f"{len(diffs)} points compared: mean dPSNR {np.mean(diffs):+.3f} dB, max |dPSNR| {worst:.3f} dB "
        f"-> {'OK' if ok else 'FAIL'} (tolerance {args.tolerance} dB)")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
