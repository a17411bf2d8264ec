"""Rate–distortion results files in CompressAI's JSON layout.

The layout (CompressAI `results/image/<dataset>/*.json`) is
  {"name": str, "description": str, "results": {"bpp": [...], "psnr-rgb": [...], ...}}
with one entry per rate point in every list. Per-image values, when present, live under an extra
top-level key "per_image" and are ignored by readers that do not know it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jaxsemic import io
from jaxsemic.errors import UserError

# Quality keys we know how to plot / compare; others are carried along untouched.
QUALITY_KEYS = ("psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "lpips-alex", "lpips-vgg", "dists")


@dataclass
class RDResults:
  """One codec's rate–distortion curve: parallel lists keyed by metric name."""

  name: str
  description: str
  results: dict[str, list[float]]
  extra: dict[str, Any] = field(default_factory=dict)

  def curve(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns (bpp, metric) as float64 arrays; derives ms-ssim-db-rgb from ms-ssim-rgb."""
    values = self.results.get(metric)
    if values is None and metric == "ms-ssim-db-rgb" and "ms-ssim-rgb" in self.results:
      values = [msssim_to_db(v) for v in self.results["ms-ssim-rgb"]]
    if values is None:
      have = ", ".join(k for k in self.results if k != "bpp")
      raise UserError(f"{self.name!r} has no {metric!r} values (it has: {have or 'none'})")
    return np.asarray(self.results["bpp"], np.float64), np.asarray(values, np.float64)

  def to_json(self) -> dict[str, Any]:
    """The CompressAI layout as a plain dict."""
    return {"name": self.name, "description": self.description, "results": self.results,
            **self.extra}


def msssim_to_db(value: float) -> float:
  """MS-SSIM in decibels, -10 log10(1 - MS-SSIM), as CompressAI's plots use."""
  return float("inf") if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def parse_results(data: Any, source: str) -> RDResults:
  """Validates a decoded JSON document; raises UserError naming the first problem."""
  if not isinstance(data, dict):
    raise UserError(f"{source}: expected a JSON object with 'name' and 'results', got "
                    f"{type(data).__name__}")
  results = data.get("results")
  if not isinstance(results, dict):
    raise UserError(f"{source}: missing 'results' object (CompressAI layout: "
                    "{'name': ..., 'results': {'bpp': [...], 'psnr-rgb': [...]}})")
  bpp = results.get("bpp")
  if not isinstance(bpp, list) or not bpp:
    raise UserError(f"{source}: 'results' has no non-empty 'bpp' list")
  n = len(bpp)
  for key, values in results.items():
    if not isinstance(values, list):
      raise UserError(f"{source}: results[{key!r}] is {type(values).__name__}, expected a list")
    if len(values) != n:
      raise UserError(f"{source}: results[{key!r}] has {len(values)} values but 'bpp' has {n}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
      raise UserError(f"{source}: results[{key!r}] must hold numbers only")
  if not any(k in results for k in QUALITY_KEYS):
    raise UserError(f"{source}: 'results' has no quality list (one of {', '.join(QUALITY_KEYS)})")
  if any(v <= 0 for v in bpp):
    raise UserError(f"{source}: 'bpp' values must be positive")
  name = data.get("name", os.path.splitext(os.path.basename(source))[0])
  if not isinstance(name, str):
    raise UserError(f"{source}: 'name' must be a string")
  extra = {k: v for k, v in data.items() if k not in ("name", "description", "results")}
  return RDResults(name, str(data.get("description", "")), results, extra)


def load_results(path: str) -> RDResults:
  """Reads and validates a results JSON file; one-line UserError on any problem."""
  if not os.path.isfile(path):
    raise UserError(f"results file not found: {path}")
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise UserError(f"{path}: not valid JSON ({e.__class__.__name__}: line "
                    f"{getattr(e, 'lineno', '?')})") from None
  return parse_results(data, path)


def write_json_atomic(path: str, data: Any, *, force: bool = False) -> None:
  """Writes JSON atomically; refuses to overwrite without force (`jaxsemic.io`)."""
  io.write_json(path, data, force)


check_output_path = io.check_output  # fails early (before hours of work) if the output cannot be written


def mean_over_images(per_image: list[dict[str, float]]) -> dict[str, float]:
  """Averages each metric over images, as CompressAI does (mean of per-image PSNR, not of MSE)."""
  keys = per_image[0].keys()
  return {k: float(np.mean([p[k] for p in per_image])) for k in keys}
