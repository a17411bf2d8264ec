"""Sweeps a classic codec over a folder of images and averages per setting, as CompressAI's bench."""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

import numpy as np
from tqdm import tqdm

from jaxsemic.errors import UserError
from jaxsemic.eval.codecs import Codec
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


def measure(codec: Codec, image: np.ndarray, setting: float,
            perceptual: dict[str, Callable] | None = None) -> dict[str, float]:
  """Encodes and decodes one image at one setting: bpp, times and quality metrics."""
  start = time.perf_counter()
  data = codec.encode(image, setting)
  encode_seconds = time.perf_counter() - start
  start = time.perf_counter()
  decoded = codec.decode(data, image.shape[:2])
  decode_seconds = time.perf_counter() - start
  h, w = image.shape[:2]
  return {"bpp": len(data) * 8 / (h * w), **rgb_metrics(image, decoded, perceptual),
          "encoding_time": encode_seconds, "decoding_time": decode_seconds}


def run_bench(codec: Codec, paths: list[str], settings: tuple[float, ...],
              progress: bool = True, perceptual: dict[str, Callable] | None = None) -> RDResults:
  """One averaged rate point per setting; per-image values kept under 'per_image'."""
  images = [load_rgb(p) for p in paths]
  small = [os.path.basename(p) for p, im in zip(paths, images) if min(im.shape[:2]) < MSSSIM_MIN_SIDE]
  if small:
    print(f"note: MS-SSIM left out, {len(small)} image(s) under {MSSSIM_MIN_SIDE} px "
          f"(e.g. {small[0]})", file=sys.stderr)
  bar = tqdm(total=len(settings) * len(images), desc=codec.name, unit="img", disable=not progress,
             file=sys.stderr)
  results: dict[str, list[float]] = {}
  per_image: dict[str, dict[str, list[float]]] = {os.path.basename(p): {} for p in paths}
  for setting in settings:
    rows = []
    for path, image in zip(paths, images):
      row = measure(codec, image, setting, perceptual)
      if small:
        row.pop("ms-ssim-rgb", None)
      rows.append(row)
      for key, value in row.items():
        per_image[os.path.basename(path)].setdefault(key, []).append(value)
      bar.update()
    for key, value in mean_over_images(rows).items():
      results.setdefault(key, []).append(value)
  bar.close()
  description = f"{codec.name}. {codec.library()}; {codec.setting} swept over {list(settings)}"
  return RDResults(codec.name, description, results,
                   {"settings": list(settings), "images": len(paths), "per_image": per_image})
