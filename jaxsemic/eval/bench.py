"""Sweeps a classic codec over a folder of images and averages per setting, as CompressAI's bench."""

from __future__ import annotations

import os
import sys
from typing import Callable

import numpy as np
from tqdm import tqdm

from jaxsemic.errors import UserError
from jaxsemic.eval.codecs import CODECS, Codec, round_trip, round_trip_file
from jaxsemic.eval.images import load_rgb
from jaxsemic.eval.metrics.msssim import ms_ssim
from jaxsemic.eval.metrics.psnr import psnr
from jaxsemic.eval.results import RDResults, mean_over_images

MSSSIM_MIN_SIDE = 161


PERCEPTUAL = ("lpips-alex", "lpips-vgg", "dists")


def perceptual_metrics(names: list[str]) -> dict[str, Callable]:
  """Loads the named learned metrics (UserError if unknown or their weights are not converted)."""
  from jaxsemic.eval.metrics.dists import load_dists
  from jaxsemic.eval.metrics.lpips import load_lpips
  out = {}
  for name in names:
    if name not in PERCEPTUAL:
      raise UserError(f"unknown metric {name!r} (one of: {', '.join(PERCEPTUAL)})")
    out[name] = load_dists() if name == "dists" else load_lpips(name.split("-")[1])
  return out


def rgb_metrics(original: np.ndarray, decoded: np.ndarray,
                perceptual: dict[str, Callable] | None = None) -> dict[str, float]:
  """PSNR and MS-SSIM (RGB, 8-bit values, range 255) of one image pair; MS-SSIM needs >= 161 px.

  perceptual: extra metrics fn(x, y) -> [B] on [0, 1] images (LPIPS, DISTS), keyed by name.
  """
  if original.shape != decoded.shape:
    raise ValueError(f"decoded shape {decoded.shape} != original {original.shape}")
  x = original[None].astype(np.float32)
  y = decoded[None].astype(np.float32)
  out = {"psnr-rgb": float(psnr(x, y, 255.0)[0])}
  if min(original.shape[:2]) >= MSSSIM_MIN_SIDE:
    out["ms-ssim-rgb"] = float(ms_ssim(x, y, data_range=255.0)[0])
  for name, fn in (perceptual or {}).items():
    out[name] = float(fn(x / 255.0, y / 255.0)[0])
  return out


def row_from(image: np.ndarray, n_bytes: int, decoded: np.ndarray, encode_seconds: float, decode_seconds: float,
             perceptual: dict[str, Callable] | None = None) -> dict[str, float]:
  """bpp, quality metrics and times of one round trip."""
  h, w = image.shape[:2]
  return {"bpp": n_bytes * 8 / (h * w), **rgb_metrics(image, decoded, perceptual),
          "encoding_time": encode_seconds, "decoding_time": decode_seconds}


def _round_trips(codec: Codec, paths: list[str], images: list[np.ndarray], settings: tuple[float, ...],
                 workers: int):
  """Yields ((setting index, image index), round trip) for every pair, in order; with workers > 1 the
  encoders and decoders run in that many processes (spawned: the parent may hold JAX's threads)."""
  jobs = [(s, i) for s in range(len(settings)) for i in range(len(paths))]
  if workers <= 1:
    for s, i in jobs:
      yield (s, i), round_trip(codec, images[i], settings[s])
    return
  import multiprocessing  # pylint: disable=import-outside-toplevel
  from concurrent.futures import ProcessPoolExecutor  # pylint: disable=import-outside-toplevel
  key = next(k for k, c in CODECS.items() if c is codec)
  with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
    futures = [pool.submit(round_trip_file, key, paths[i], settings[s]) for s, i in jobs]
    for job, future in zip(jobs, futures):
      yield job, future.result()


def run_bench(codec: Codec, paths: list[str], settings: tuple[float, ...],
              progress: bool = True, perceptual: dict[str, Callable] | None = None, workers: int = 1
              ) -> RDResults:
  """One averaged rate point per setting; per-image values kept under 'per_image'.

  workers > 1: encode and decode in that many processes (metrics stay here, so the numbers are the same;
  the times are per process and grow when the workers share cores).
  """
  images = [load_rgb(p) for p in paths]
  small = [os.path.basename(p) for p, im in zip(paths, images) if min(im.shape[:2]) < MSSSIM_MIN_SIDE]
  if small:
    print(f"note: MS-SSIM left out, {len(small)} image(s) under {MSSSIM_MIN_SIDE} px "
          f"(e.g. {small[0]})", file=sys.stderr)
  bar = tqdm(total=len(settings) * len(images), desc=codec.name, unit="img", disable=not progress,
             file=sys.stderr)
  results: dict[str, list[float]] = {}
  per_image: dict[str, dict[str, list[float]]] = {os.path.basename(p): {} for p in paths}
  rows: list[dict[str, float]] = []
  for (s, i), trip in _round_trips(codec, paths, images, settings, workers):
    row = row_from(images[i], *trip, perceptual)
    if small:
      row.pop("ms-ssim-rgb", None)
    rows.append(row)
    for key, value in row.items():
      per_image[os.path.basename(paths[i])].setdefault(key, []).append(value)
    bar.update()
    if i == len(paths) - 1:  # the setting's last image: its averaged rate point
      for key, value in mean_over_images(rows).items():
        results.setdefault(key, []).append(value)
      rows = []
  bar.close()
  description = f"{codec.name}. {codec.library()}; {codec.setting} swept over {list(settings)}"
  return RDResults(codec.name, description, results,
                   {"settings": list(settings), "images": len(paths), "per_image": per_image})
