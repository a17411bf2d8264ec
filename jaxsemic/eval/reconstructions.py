"""`jaxsemic eval --reconstructions DIR`: quality of images decoded elsewhere (e.g. SEDIC on a GPU box).

Each original in --data is matched by file stem with a reconstruction in DIR (any image extension) and scored
like `jaxsemic eval` (PSNR, MS-SSIM, the --metrics). Rates come from a bits file, not from a codec: bits per
component (reference, text, masks, header, total) as written by `benchmarks/sedic_table8.py --out` or by
`jaxsemic sedic encode --json` (one object per line, appended for several images).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tqdm import tqdm

from jaxsemic.errors import UserError
from jaxsemic.eval.bench import PERCEPTUAL, perceptual_metrics, rgb_metrics
from jaxsemic.eval.fid_sets import SetMetrics
from jaxsemic.eval.images import IMAGE_EXTENSIONS, list_images, load_rgb
from jaxsemic.eval.results import RDResults, check_output_path, mean_over_images, write_json_atomic


def _bits_rows(data, source: str) -> list[dict]:
  """The per-image rows of a bits document: {"images": [...]}, one encode --json object, or a list of them."""
  if isinstance(data, dict) and isinstance(data.get("images"), list):
    return data["images"]
  if isinstance(data, dict):
    return [data]
  if isinstance(data, list):
    return data
  raise UserError(f"{source}: expected per-image objects with \"file\" and \"bits\"")


def load_bits(path: str) -> dict[str, dict[str, float]]:
  """{file stem: bpp per component} from a bits JSON (or JSON lines) file; UserError on a malformed one."""
  if not os.path.isfile(path):
    raise UserError(f"bits file not found: {path}")
  with open(path, encoding="utf-8") as f:
    text = f.read()
  try:
    docs = [json.loads(text)]
  except json.JSONDecodeError:
    try:
      docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
      raise UserError(f"{path}: neither JSON nor JSON lines ({e.msg}, line {e.lineno})") from None
  out = {}
  for doc in docs:
    for row in _bits_rows(doc, path):
      if not (isinstance(row, dict) and isinstance(row.get("file"), str) and isinstance(row.get("bits"), dict)
              and isinstance(row.get("height"), int) and isinstance(row.get("width"), int)):
        raise UserError(f"{path}: every image needs \"file\", \"height\", \"width\" and a \"bits\" object")
      pixels = row["height"] * row["width"]
      if "total" not in row["bits"] or pixels <= 0:
        raise UserError(f"{path}: {row['file']} has no total bits or no size")
      out[os.path.splitext(os.path.basename(row["file"]))[0]] = {
          k: float(v) / pixels for k, v in row["bits"].items()}
  return out


def match_reconstructions(paths: list[str], folder: str) -> list[str]:
  """The reconstruction in `folder` for each original (same file stem); UserError naming a missing one."""
  found = {os.path.splitext(os.path.basename(p))[0]: p for p in list_images(folder)}
  out = []
  for p in paths:
    stem = os.path.splitext(os.path.basename(p))[0]
    if stem not in found:
      raise UserError(f"no reconstruction of {os.path.basename(p)} in {folder} "
                      f"(expected {stem} with one of {', '.join(IMAGE_EXTENSIONS)})")
    out.append(found[stem])
  return out


def metric_functions(metrics: tuple[str, ...], paths: list[str], originals: list, set_options: dict | None,
                     clip_dir: str | None) -> tuple[dict, SetMetrics]:
  """Per-image metric functions (LPIPS, DISTS, NIQE, CLIP) and the FID/KID sets, as `jaxsemic eval` loads them."""
  from jaxsemic.eval.metrics.clip import CLIP_METRICS, clip_metrics  # pylint: disable=import-outside-toplevel
  from jaxsemic.eval.metrics.niqe import niqe_metric  # pylint: disable=import-outside-toplevel
  known = (*PERCEPTUAL, *CLIP_METRICS, "niqe", *SetMetrics.NAMES)
  unknown = [m for m in metrics if m not in known]
  if unknown:
    raise UserError(f"unknown metric {unknown[0]!r} (one of: {', '.join(known)})")
  functions = clip_metrics(list(metrics), clip_dir)
  if "niqe" in metrics:
    functions["niqe"] = niqe_metric(paths)
  functions.update(perceptual_metrics([m for m in metrics if m in PERCEPTUAL]))
  return functions, SetMetrics([m for m in metrics if m in SetMetrics.NAMES], originals, **(set_options or {}))


def rate_keys(bpp: dict[str, float]) -> dict[str, float]:
  """Results keys of one image's rates: "bpp" (the total) and "bpp-<component>"."""
  return {"bpp" if k == "total" else f"bpp-{k}": v for k, v in bpp.items()}


def evaluate_reconstructions(paths: list[str], folder: str, bits: dict[str, dict[str, float]] | None,
                             name: str, progress: bool = True, metrics: tuple[str, ...] = (),
                             set_options: dict | None = None, clip_dir: str | None = None) -> RDResults:
  """One results point: mean rates (if bits are given) and quality of the reconstructions against `paths`."""
  recon = match_reconstructions(paths, folder)
  stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
  if bits is not None:
    missing = [s for s in stems if s not in bits]
    if missing:
      raise UserError(f"the bits file has no entry for {missing[0]} ({len(missing)} image(s) missing)")
  originals = [load_rgb(p) for p in paths]
  perceptual, sets = metric_functions(metrics, paths, originals, set_options, clip_dir)
  fakes = sets.collector()
  rows, per_image = [], {}
  for path, stem, original, rpath in tqdm(list(zip(paths, stems, originals, recon)), desc="eval", unit="img",
                                          disable=not progress, file=sys.stderr):
    decoded = load_rgb(rpath)
    if decoded.shape != original.shape:
      raise UserError(f"{rpath} is {decoded.shape[1]}x{decoded.shape[0]}, the original "
                      f"{original.shape[1]}x{original.shape[0]}")
    row = {**(rate_keys(bits[stem]) if bits is not None else {}), **rgb_metrics(original, decoded, perceptual)}
    rows.append(row)
    per_image[os.path.basename(path)] = row
    fakes.append(decoded)
  keys = [k for k in rows[0] if all(k in r for r in rows)]
  averages = mean_over_images([{k: r[k] for k in keys} for r in rows])
  averages.update(sets.scores(fakes))
  description = (f"jaxsemic eval of {len(paths)} reconstruction(s) from {os.path.abspath(folder)} against the "
                 f"originals; rates {'from the bits file' if bits is not None else 'not given'}{sets.describe()}")
  return RDResults(name, description, {k: [v] for k, v in averages.items()},
                   {"reconstructions": os.path.abspath(folder), "per_image": per_image})


def run_reconstructions(args: argparse.Namespace) -> int:
  """The `jaxsemic eval --reconstructions` command (called from commands/evaluate.py)."""
  if args.model:
    raise UserError("give either --model or --reconstructions, not both")
  if not args.reconstructions:
    raise UserError("--bits goes with --reconstructions DIR")
  if args.limit is not None and args.limit < 1:
    raise UserError("--limit must be at least 1")
  if not os.path.isdir(args.reconstructions):
    raise UserError(f"not a folder: {args.reconstructions}")
  paths = list_images(args.data)[:args.limit] if args.limit else list_images(args.data)
  if args.out:
    check_output_path(args.out, args.force)
  bits = load_bits(args.bits) if args.bits else None
  metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
  results = evaluate_reconstructions(paths, args.reconstructions, bits, args.name, not args.quiet, metrics,
                                     {"patches": args.fid_patches, "kid_subset_size": args.kid_subset_size},
                                     args.clip)
  if not args.out:
    print(json.dumps(results.to_json(), indent=2))
    return 0
  write_json_atomic(args.out, results.to_json(), force=args.force)
  r = {k: v[0] for k, v in results.results.items()}
  rates = ", ".join(f"{k} {v:.4f}" for k, v in r.items() if k.startswith("bpp"))
  quality = ", ".join(f"{k} {v:.4g}" for k, v in r.items() if not k.startswith("bpp"))
  print(f"{args.reconstructions}: {rates or 'no rates (no --bits)'}; {quality}")
  return 0
