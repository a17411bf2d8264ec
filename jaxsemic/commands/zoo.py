"""`jaxsemic zoo list | get`: CompressAI's pretrained models, their Kodak numbers, and a cached conversion."""

from __future__ import annotations

import argparse
import json

from jaxsemic.zoo.config import ZOO_NAMES
from jaxsemic.zoo.pretrained import METRICS


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.epilog = "example: jaxsemic zoo get bmshj2018-hyperprior --quality 3 (prints the model directory)"
  sub = parser.add_subparsers(dest="action", required=True, metavar="{list,get}")
  ls = sub.add_parser("list", help="published models with CompressAI's Kodak bpp / PSNR / MS-SSIM")
  ls.add_argument("--arch", choices=ZOO_NAMES, help="only this architecture (default: all)")
  ls.add_argument("--metric", choices=METRICS, help="only models trained for this metric (default: both)")
  ls.add_argument("--json", action="store_true", help="print the rows as one JSON list")
  get = sub.add_parser("get", help="download, verify and convert one model; print its directory",
                       description="Downloads CompressAI's checkpoint, checks its published SHA-256 prefix, "
                       "converts it into ~/.cache/jaxsemic/models/ARCH-METRIC-qQ ($JAXSEMIC_CACHE or "
                       "$XDG_CACHE_HOME respected; $JAXSEMIC_ZOO_URL replaces the download root) and prints "
                       "the model directory (for --model).")
  get.add_argument("arch", choices=ZOO_NAMES, help="CompressAI architecture name")
  get.add_argument("--quality", type=int, required=True, help="quality level, 1 (lowest rate) to 8 (6 for cheng2020)")
  get.add_argument("--metric", choices=METRICS, default="mse", help="training distortion (default: mse)")
  get.add_argument("--force", action="store_true", help="download and convert again even if cached")
  get.add_argument("--json", action="store_true", help="print one JSON object instead of the directory")


def _list(args: argparse.Namespace) -> int:
  from jaxsemic.zoo import pretrained  # pylint: disable=import-outside-toplevel
  rows = [r for r in pretrained.table()["models"]
          if args.arch in (None, r["arch"]) and args.metric in (None, r["metric"])]
  if args.json:
    print(json.dumps([{k: r[k] for k in ("arch", "metric", "quality", "N", "M", "kodak")} for r in rows]))
    return 0
  print(f"{'architecture':<22}{'metric':<9}{'q':>2}{'N':>5}{'M':>5}{'bpp':>8}{'PSNR':>8}{'MS-SSIM':>9}")
  for r in rows:
    k = r["kodak"]
    print(f"{r['arch']:<22}{r['metric']:<9}{r['quality']:>2}{r['N']:>5}{r['M']:>5}"
          f"{k['bpp']:>8.3f}{k['psnr']:>8.2f}{k['ms-ssim']:>9.4f}")
  print("Kodak numbers as CompressAI publishes them (results/image/kodak); jaxsemic zoo get ARCH --quality Q")
  return 0


def _get(args: argparse.Namespace) -> int:
  from jaxsemic.commands.import_compressai import convert_checkpoint  # pylint: disable=import-outside-toplevel
  from jaxsemic.zoo import pretrained  # pylint: disable=import-outside-toplevel
  out, cached = pretrained.fetch(args.arch, args.quality, args.metric, force=args.force,
                                 convert=convert_checkpoint)
  if args.json:
    row = pretrained.entry(args.arch, args.quality, args.metric)
    print(json.dumps({"model": out, "arch": args.arch, "metric": args.metric, "quality": args.quality,
                      "cached": cached, "kodak": row["kodak"]}))
  else:
    print(out)
  return 0


def run(args: argparse.Namespace) -> int:
  return _list(args) if args.action == "list" else _get(args)
