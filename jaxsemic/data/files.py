"""Finding training images on disk and reading their caption sidecars."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from jaxsemic import io
from jaxsemic.errors import UserError

IMAGE_SUFFIXES = io.IMAGE_EXTENSIONS  # which files are images: one rule everywhere (jaxsemic.io)
# What PIL raises on a truncated, corrupt or unsupported file.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def list_images(root: str) -> list[str]:
  """Every image below `root` (recursive, `io.is_image_name`), sorted; a one-line UserError if there are none."""
  if not root:
    raise UserError("no data folder given (set --config.data.train_dir)")
  if not os.path.isdir(root):
    raise UserError(f"data folder not found: {root}")
  paths = io.image_files(root, recursive=True)
  if not paths:
    raise UserError(f"no PNG or JPEG images (nor {', '.join(IMAGE_SUFFIXES[3:])}) in data folder: {root}")
  return paths


def read_rgb(path: str) -> np.ndarray:
  """Decodes an image file to uint8 [H, W, 3] (grey and palette images expanded, alpha dropped)."""
  with Image.open(path) as im:
    im.load()
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def image_size(path: str) -> tuple[int, int] | None:
  """(height, width) read from the header only, or None if the file cannot be opened."""
  try:
    with Image.open(path) as im:
      return im.height, im.width
  except DECODE_ERRORS:
    return None


def find_caption_files(root: str) -> list[str]:
  """All `*.jsonl` caption sidecars below `root`."""
  found = []
  for folder, dirs, names in os.walk(root, followlinks=True):
    dirs.sort()
    found.extend(os.path.join(folder, n) for n in sorted(names) if n.endswith(".jsonl"))
  return found


def load_captions(jsonl_paths: Sequence[str], root: str) -> dict[str, list[str]]:
  """Reads caption sidecars (`io.read_captions`, bad lines skipped); keys are image paths relative to `root`.

  A line's "file" is relative to the folder holding its jsonl (the COCO / Flickr8k convention).
  """
  captions: dict[str, list[str]] = {}
  for path in jsonl_paths:
    base = os.path.dirname(os.path.abspath(path))
    for file, caps in io.read_captions(path, strict=False).items():
      captions.setdefault(relative_key(os.path.join(base, file), root), []).extend(caps)
  return captions


def relative_key(path: str, root: str) -> str:
  """The key we use for an image everywhere: its path relative to the data root, '/'-separated."""
  return os.path.relpath(os.path.abspath(path), os.path.abspath(root)).replace(os.sep, "/")
