"""`jaxsemic bdrate ANCHOR.json TEST.json [...]`: Bjøntegaard delta rate and quality."""

from __future__ import annotations

import argparse
import json

from jaxsemic.eval import bdrate
from jaxsemic.eval.results import RDResults, load_results


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Declares the command's arguments."""
  parser.add_argument("anchor", help="anchor results JSON (CompressAI layout), e.g. vtm.json")
  parser.add_argument("tests", nargs="+", metavar="test", help="results JSON(s) to compare")
  parser.add_argument("--metric", default="psnr-rgb",
                      help="quality key: psnr-rgb (default), ms-ssim-rgb, ms-ssim-db-rgb, ...")
  parser.add_argument("--method", choices=(*bdrate.METHODS, "both"), default="cubic",
                      help="cubic = classic Bjøntegaard polynomial fit (default); pchip = "
                      "piecewise cubic Hermite")
  parser.add_argument("--max-bpp", type=float, default=1.5,
                      help="curves with more than --max-points points keep only bpp <= this "
                      "(default 1.5, the rule of CompressAI-style Kodak comparisons)")
  parser.add_argument("--max-points", type=int, default=6)
  parser.add_argument("--no-restrict", action="store_true", help="use every point of every curve")
  parser.add_argument("--json", action="store_true", help="print one JSON object with the results")


def compare(anchor: RDResults, test: RDResults, metric: str, method: str,
            max_bpp: float | None, max_points: int) -> tuple[float, float]:
  """(BD-rate %, BD-quality) of test against anchor under the restriction rule."""
  a = bdrate.restrict_curve(*anchor.curve(metric), max_bpp=max_bpp, max_points=max_points)
  t = bdrate.restrict_curve(*test.curve(metric), max_bpp=max_bpp, max_points=max_points)
  return bdrate.bd_rate(*a, *t, method=method), bdrate.bd_quality(*a, *t, method=method)


def run(args: argparse.Namespace) -> int:
  """Prints one row per test file."""
  anchor = load_results(args.anchor)
  tests = [load_results(p) for p in args.tests]
  max_bpp = None if args.no_restrict else args.max_bpp
  methods = bdrate.METHODS if args.method == "both" else (args.method,)
  unit = "dB" if "psnr" in args.metric or "db" in args.metric else ""
  if args.json:
    rows = {t.name: {m: dict(zip(("bd_rate", "bd_quality"), compare(anchor, t, args.metric, m, max_bpp,
                                                                   args.max_points))) for m in methods}
            for t in tests}
    print(json.dumps({"anchor": anchor.name, "metric": args.metric, "tests": rows}))
    return 0
  width = max(len(t.name) for t in tests + [anchor])
  print(f"anchor: {anchor.name}  metric: {args.metric}  "
        f"restriction: {'none' if max_bpp is None else f'bpp <= {max_bpp} if > {args.max_points} points'}")
  header = "".join(f"  {'BD-rate ' + m:>16}  {'BD-' + args.metric + ' ' + m:>22}" for m in methods)
  print(f"{'test':<{width}}{header}")
  for test in tests:
    cells = []
    for m in methods:
      rate, quality = compare(anchor, test, args.metric, m, max_bpp, args.max_points)
      cells.append(f"  {rate:>+15.2f}%  {quality:>+19.4f}{unit:>3}")
    print(f"{test.name:<{width}}{''.join(cells)}")
  return 0
