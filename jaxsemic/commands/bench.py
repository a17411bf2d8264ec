"""`jaxsemic bench CODEC --data FOLDER --out codec.json`: a classic codec's rate–distortion curve."""

from __future__ import annotations

import argparse
import json

from jaxsemic.errors import UserError
from jaxsemic.eval.bench import perceptual_metrics, run_bench
from jaxsemic.eval.codecs import CODECS, get_codec
from jaxsemic.eval.images import list_images
from jaxsemic.eval.results import check_output_path, write_json_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Declares the command's arguments."""
  parser.add_argument("codec", help=f"one of: {', '.join(CODECS)}")
  parser.add_argument("--data", required=True, help="folder of images (e.g. Kodak PNGs)")
  parser.add_argument("--out", help="results JSON to write (CompressAI layout); default: stdout")
  parser.add_argument("--settings", help="comma-separated quality settings to sweep instead of the "
                      "codec's default (quality, distance, target PSNR or QP, see docs)")
  parser.add_argument("--metrics", default="", help="extra learned metrics, comma-separated: "
                      "lpips-alex, lpips-vgg, dists (weights converted once, see docs/evaluation.md)")
  parser.add_argument("--limit", type=int, help="use only the first N images (quick checks)")
  parser.add_argument("-j", "--jobs", type=int, default=1, help="encoder/decoder processes (default: "
                      "%(default)s; the numbers are the same, the times per process grow when they share cores)")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_settings(text: str) -> tuple[float, ...]:
  """'5,10,20' -> (5.0, 10.0, 20.0); UserError on anything else."""
  try:
    values = tuple(float(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise UserError(f"--settings must be comma-separated numbers, got {text!r}") from None
  if not values:
    raise UserError("--settings is empty")
  return values


def run(args: argparse.Namespace) -> int:
  """Runs the sweep and writes (or prints) the results JSON."""
  codec = get_codec(args.codec)
  paths = list_images(args.data)
  if args.limit is not None:
    if args.limit < 1:
      raise UserError("--limit must be at least 1")
    paths = paths[:args.limit]
  settings = parse_settings(args.settings) if args.settings else codec.settings
  if args.out:
    check_output_path(args.out, args.force)
  if args.jobs < 1:
    raise UserError(f"-j/--jobs must be at least 1, got {args.jobs}")
  metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
  results = run_bench(codec, paths, settings, progress=not args.quiet,
                      perceptual=perceptual_metrics(metrics), workers=args.jobs)
  if args.out:
    write_json_atomic(args.out, results.to_json(), force=args.force)
  else:
    print(json.dumps(results.to_json(), indent=2))
  return 0
