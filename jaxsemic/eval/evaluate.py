"""Rate–distortion evaluation of jaxsemic models: real .jsc bytes, RGB PSNR / MS-SSIM, coding times.

Like CompressAI's eval_model on 8-bit reconstructions: each image is compressed to bytes, the bytes
decoded, and the uint8 reconstruction compared with the original; per-image values are averaged.
One rate point per model.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

import numpy as np
from tqdm import tqdm

from jaxsemic.errors import UserError
from jaxsemic.eval.bench import PERCEPTUAL, perceptual_metrics, rgb_metrics
from jaxsemic.eval.fid_sets import SetMetrics
from jaxsemic.eval.metrics.clip import CLIP_METRICS, clip_metrics
from jaxsemic.eval.metrics.niqe import niqe_metric
from jaxsemic.eval.results import RDResults, mean_over_images


def _text_for(model, captions: str | None, path: str):
  """The semantic vector for one image: its caption's, else the empty caption's (as `compress` does)."""
  if not model.text_dim:
    return None
  from jaxsemic.text_lookup import caption_from_file, embed_caption
  return embed_caption(caption_from_file(captions, path) if captions else "", model)


def evaluate_model(model, images: list[tuple[str, np.ndarray]], captions: str | None,
                   bar: tqdm, perceptual: dict | None = None,
                   on_decoded: Callable[[np.ndarray], None] | None = None
                   ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
  """(averages, per-image values) for one loaded CodecModel; on_decoded sees each uint8 reconstruction."""
  from jaxsemic.codec import api
  warmed: set[tuple[int, int]] = set()
  rows, per_image = [], {}
  for path, image in images:
    text = _text_for(model, captions, path)
    if image.shape not in warmed:  # compile once per image size, outside the timings
      api.decompress(model, api.compress(model, image, text)[0])
      warmed.add(image.shape)
    start = time.perf_counter()
    data, info = api.compress(model, image, text)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = api.decompress(model, data)
    decode_seconds = time.perf_counter() - start
    h, w = image.shape[:2]
    row = {"bpp": 8.0 * len(data) / (h * w), "estimated_bpp": float(info["estimated_bpp"]),
           **rgb_metrics(image, decoded, perceptual), "encoding_time": encode_seconds,
           "decoding_time": decode_seconds}
    rows.append(row)
    per_image[os.path.basename(path)] = row
    if on_decoded is not None:
      on_decoded(decoded)
    bar.update()
  keys = [k for k in rows[0] if all(k in r for r in rows)]  # MS-SSIM only if every image allows it
  return mean_over_images([{k: r[k] for k in keys} for r in rows]), per_image


def evaluate(model_dirs: list[str], paths: list[str], captions: str | None = None,
             name: str = "jaxsemic", progress: bool = True,
             metrics: tuple[str, ...] = (), set_options: dict | None = None,
             clip_dir: str | None = None) -> RDResults:
  """Loads each model in turn and evaluates it on all images; one results point per model.

  metrics: extra per-image metrics (LPIPS, DISTS, NIQE; clip-sim, clip-iqa with the CLIP model in clip_dir)
  and set metrics (fid, kid: reconstructions vs originals over the whole folder); set_options:
  keyword arguments of SetMetrics.
  """
  from jaxsemic.codec.api import read_image
  from jaxsemic.codec.model_io import load_model
  known = (*PERCEPTUAL, *CLIP_METRICS, "niqe", *SetMetrics.NAMES)
  for m in metrics:
    if m not in known:
      raise UserError(f"unknown metric {m!r} (one of: {', '.join(known)})")
  extra = clip_metrics(list(metrics), clip_dir)  # before the models: fails at once without --clip
  if "niqe" in metrics:
    extra["niqe"] = niqe_metric(paths)
  models = [load_model(d) for d in model_dirs]  # fail on a bad model before any work
  images = [(p, read_image(p, quiet=True)) for p in paths]
  perceptual = perceptual_metrics([m for m in metrics if m in PERCEPTUAL])
  perceptual.update(extra)
  sets = SetMetrics([m for m in metrics if m in SetMetrics.NAMES], [im for _, im in images],
                    **(set_options or {}))  # checks patch counts, loads weights
  if captions is None and any(m.text_dim for m in models):
    print("note: no --captions: text-guided models get the empty caption", file=sys.stderr)
  bar = tqdm(total=len(models) * len(images), desc="eval", unit="img", disable=not progress,
             file=sys.stderr)
  results: dict[str, list[float]] = {}
  about, per_model = [], {}
  for model_dir, model in zip(model_dirs, models):
    fakes = sets.collector()
    averages, per_image = evaluate_model(model, images, captions, bar, perceptual, fakes.append)
    averages.update(sets.scores(fakes))
    for key, value in averages.items():
      results.setdefault(key, []).append(value)
    about.append({"path": os.path.abspath(model_dir), "model_id": model.model_id.hex(),
                  "params": model.num_params(), "fusion": model.cfg.to_dict().get("fusion", "none")})
    per_model[os.path.abspath(model_dir)] = per_image
  bar.close()
  description = (f"jaxsemic eval of {len(models)} model(s) on {len(images)} image(s); real .jsc "
                 f"bytes, 8-bit RGB reconstructions; captions: {captions or 'none (empty caption)'}"
                 f"{sets.describe()}")
  return RDResults(name, description, results, {"models": about, "per_image": per_model})
