"""Listing and reading the images of an evaluation folder."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from jaxsemic import io
from jaxsemic.errors import UserError

IMAGE_EXTENSIONS = io.IMAGE_EXTENSIONS


def list_images(folder: str) -> list[str]:
  """Sorted image paths directly inside folder; UserError if there is none."""
  if not os.path.isdir(folder):
    raise UserError(f"not a folder: {folder}")
  paths = io.image_files(folder)
  if not paths:
    raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
  return paths


def load_rgb(path: str) -> np.ndarray:
  """uint8 [H,W,3]: palette, grey and 16-bit images converted by Pillow, alpha dropped."""
  try:
    with Image.open(path) as im:
      return np.asarray(im.convert("RGB"))
  except (UnidentifiedImageError, OSError) as e:
    raise UserError(f"cannot read image {path}: {e}") from None


def image_size(path: str) -> tuple[int, int]:
  """(height, width) from the file header, without decoding the pixels."""
  try:
    with Image.open(path) as im:
      return im.height, im.width
  except (UnidentifiedImageError, OSError) as e:
    raise UserError(f"cannot read image {path}: {e}") from None
