"""`jaxsemic plot A.json B.json ... --out rd.png`: rate–distortion curves, optional BD-rate legend."""

from __future__ import annotations

import argparse
import json

from jaxsemic.errors import UserError
from jaxsemic.eval.plot import plot_rd
from jaxsemic.eval.results import load_results


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Declares the command's arguments."""
  parser.add_argument("results", nargs="+", help="results JSON files (CompressAI layout)")
  parser.add_argument("--out", required=True, help="figure to write (.png, .pdf or .svg)")
  parser.add_argument("--anchor", help="results JSON to compute BD-rates against (shown in the "
                      "legend; the anchor is plotted dashed)")
  parser.add_argument("--bd-metric", default="psnr-rgb", help="quality key for the BD-rates")
  parser.add_argument("--bd-method", choices=("cubic", "pchip"), default="cubic",
                      help="BD-rate fit: classic cubic (needs 4 points a curve) or pchip (default: %(default)s)")
  parser.add_argument("--max-bpp", type=float, help="plot only points up to this bpp")
  parser.add_argument("--label", action="append", default=[],
                      help="curve label, once per results file in order (default: each file's name)")
  parser.add_argument("--title", default="")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument("--json", action="store_true", help="print one JSON object with the results")


def run(args: argparse.Namespace) -> int:
  """Loads every file, draws the figure and prints the BD-rates."""
  curves = [load_results(p) for p in args.results]
  if len(args.label) > len(curves):
    raise UserError(f"{len(args.label)} --label given for {len(curves)} results files")
  for curve, label in zip(curves, args.label):
    curve.name = label
  anchor = None
  if args.anchor:
    anchor = load_results(args.anchor)
    match = [c for c, p in zip(curves, args.results) if p == args.anchor]
    anchor = match[0] if match else anchor
    if not match:
      curves.append(anchor)
  rates = plot_rd(curves, args.out, anchor=anchor, bd_metric=args.bd_metric, bd_method=args.bd_method,
                  max_bpp=args.max_bpp, title=args.title, force=args.force)
  if args.json:
    print(json.dumps({"out": args.out, "bd_rate": {n: r for n, r in rates.items()
                                                   if anchor is not None and n != anchor.name}}))
    return 0
  for name, rate in rates.items():
    if anchor is not None and name != anchor.name:
      print(f"{name:<40} {'n/a' if rate is None else f'{rate:+.2f}%'}")
  print(f"wrote {args.out}")
  return 0
