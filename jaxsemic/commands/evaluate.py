"""`jaxsemic eval --model DIR [--model DIR2] --data FOLDER --out results.json`: models' RD points."""

from __future__ import annotations

import argparse
import json

from jaxsemic.errors import UserError
from jaxsemic.eval.fid_sets import DEFAULT_KID_SUBSET_SIZE
from jaxsemic.eval.images import list_images
from jaxsemic.eval.results import check_output_path, write_json_atomic


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Declares the command's arguments."""
  parser.add_argument("--model", action="append",
                      help="model directory (repeat for several rate points)")
  parser.add_argument("--reconstructions", help="instead of --model: a folder of images decoded elsewhere "
                      "(matched to --data by file stem), e.g. SEDIC decodes from a GPU box")
  parser.add_argument("--bits", help="with --reconstructions: bits per image and component (benchmarks/"
                      "sedic_table8.py --out, or `jaxsemic sedic encode --json` lines)")
  parser.add_argument("--data", required=True, help="folder of images (e.g. Kodak PNGs)")
  parser.add_argument("--captions", help="jsonl of {'file', 'caption' | 'captions'} for text-guided "
                      "models (default: the empty caption)")
  parser.add_argument("--out", help="results JSON to write (CompressAI layout); default: stdout")
  parser.add_argument("--metrics", default="", help="extra learned metrics, comma-separated: "
                      "lpips-alex, lpips-vgg, dists, niqe, clip-sim, clip-iqa (per image), fid, kid "
                      "(reconstructions vs originals over the folder); see docs/evaluation.md")
  parser.add_argument("--clip", help="Hugging Face CLIP model directory for clip-sim / clip-iqa "
                      "(not downloadable here)")
  parser.add_argument("--fid-patches", type=int, default=256, help="FID/KID patch side (HiFiC's "
                      "256 with the half-shifted second grid; 0 = whole images resized to 299)")
  parser.add_argument("--kid-subset-size", type=int, default=DEFAULT_KID_SUBSET_SIZE,
                      help="patches per KID subset (at most the number of patches)")
  parser.add_argument("--name", default="jaxsemic", help="curve name in the results file")
  parser.add_argument("--limit", type=int, help="use only the first N images (quick checks)")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
  """Evaluates every model and writes (or prints) the results JSON."""
  if args.reconstructions or args.bits:
    from jaxsemic.eval.reconstructions import run_reconstructions
    return run_reconstructions(args)
  if not args.model:
    raise UserError("give --model MODEL_DIR (repeatable) or --reconstructions DIR")
  from jaxsemic.eval.evaluate import evaluate
  paths = list_images(args.data)
  if args.limit is not None:
    if args.limit < 1:
      raise UserError("--limit must be at least 1")
    paths = paths[:args.limit]
  if args.out:
    check_output_path(args.out, args.force)
  metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
  if args.fid_patches < 0 or 0 < args.fid_patches < 16:
    raise UserError(f"--fid-patches must be 0 (whole images) or at least 16, got {args.fid_patches}")
  results = evaluate(args.model, paths, args.captions, args.name, progress=not args.quiet,
                     metrics=metrics, set_options={"patches": args.fid_patches,
                                                   "kid_subset_size": args.kid_subset_size},
                     clip_dir=args.clip)
  if args.out:
    write_json_atomic(args.out, results.to_json(), force=args.force)
    r = results.results
    for i, about in enumerate(results.extra["models"]):
      msssim = f", MS-SSIM {r['ms-ssim-rgb'][i]:.4f}" if "ms-ssim-rgb" in r else ""
      extra = "".join(f", {k} {r[k][i]:.4g}" for k in ("fid", "kid", "niqe", "clip-sim", "clip-iqa")
                      if k in r)
      print(f"{about['path']}: {r['bpp'][i]:.4f} bpp, {r['psnr-rgb'][i]:.2f} dB{msssim}{extra}, "
            f"enc {r['encoding_time'][i]:.2f} s, dec {r['decoding_time'][i]:.2f} s, "
            f"{about['params']:,} params")
  else:
    print(json.dumps(results.to_json(), indent=2))
  return 0
