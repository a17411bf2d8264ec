"""COCO instance masks (polygon annotations) rasterised for the mask-coding benchmark and prior."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image, ImageDraw

from jaxsemic.errors import UserError


def polygon_mask(segmentation: list[list[float]], src_hw: tuple[int, int], hw: tuple[int, int]) -> np.ndarray:
  """bool[H, W]: the union of COCO polygons (x, y pairs in a src_hw image), stretched to hw."""
  sy, sx = hw[0] / src_hw[0], hw[1] / src_hw[1]
  img = Image.new("L", (hw[1], hw[0]), 0)
  draw = ImageDraw.Draw(img)
  for poly in segmentation:
    pts = [(x * sx, y * sy) for x, y in zip(poly[0::2], poly[1::2])]
    if len(pts) >= 3:
      draw.polygon(pts, fill=1)
  return np.asarray(img, bool)


def instance_masks(annotations: dict, hw: tuple[int, int] = (512, 768), largest: int = 3) -> dict[int, np.ndarray]:
  """{image id: bool[J, H, W]}: the `largest` non-crowd polygon instances of each image (by COCO area,
  largest first), stretched to hw; images without such instances are left out."""
  sizes = {im["id"]: (im["height"], im["width"]) for im in annotations["images"]}
  per_image: dict[int, list[dict]] = {}
  for a in annotations["annotations"]:
    if not a.get("iscrowd") and isinstance(a.get("segmentation"), list):
      per_image.setdefault(a["image_id"], []).append(a)
  out = {}
  for image_id in sorted(per_image):
    anns = sorted(per_image[image_id], key=lambda a: (-a["area"], a["id"]))[:largest]
    out[image_id] = np.stack([polygon_mask(a["segmentation"], sizes[image_id], hw) for a in anns])
  return out


def read_instances(path: str | os.PathLike) -> dict:
  """A COCO instances JSON file."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"cannot read COCO annotations {path}: {e}") from e
