"""Per-example work of the input pipeline: decode, random crop, flip, caption sampling."""

from __future__ import annotations

import dataclasses
import logging

import grain
import numpy as np
from PIL import Image

from jaxsemic.data.files import DECODE_ERRORS, read_rgb
from jaxsemic.errors import UserError

# How many neighbouring files are tried in place of an unreadable one before giving up.
MAX_FALLBACKS = 16


@dataclasses.dataclass
class DecodeCropFlip(grain.transforms.RandomMap):
  """Turns a file index into {'image': uint8 [c, c, 3], 'skipped': int32, 'text': float32 [D]?}.

  An unreadable file is replaced by the next readable one (index + 1, + 2, ...) and counted in
  'skipped', so a batch always has the same shape and the count reaches the training loop.
  """

  paths: list[str]
  crop: int
  upscale_small: bool = True
  flip: bool = True
  text_rows: list[np.ndarray | None] | None = None
  empty_text: np.ndarray | None = None
  caption_dropout: float = 0.0

  def random_map(self, element, rng: np.random.Generator):
    """Decodes element (an int index) with fallbacks, then crops, flips and samples a caption."""
    index = int(element)
    for attempt in range(MAX_FALLBACKS):
      i = (index + attempt) % len(self.paths)
      try:
        image = read_rgb(self.paths[i])
      except DECODE_ERRORS as e:
        logging.warning("skipping unreadable image %s (%s)", self.paths[i], e)
        continue
      image = self._fit(image)
      if image is None:
        continue
      out = {"image": random_crop_flip(image, self.crop, self.flip, rng),
             "skipped": np.int32(attempt)}
      if self.text_rows is not None:
        out["text"] = self._text(i, rng)
      return out
    raise UserError(f"{MAX_FALLBACKS} unreadable images in a row near {self.paths[index]}")

  def _fit(self, image: np.ndarray) -> np.ndarray | None:
    """Upscales (keeping aspect) an image smaller than the crop, or returns None to skip it."""
    h, w = image.shape[:2]
    if min(h, w) >= self.crop:
      return image
    if not self.upscale_small:
      return None
    s = self.crop / min(h, w)
    size = (max(self.crop, round(w * s)), max(self.crop, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))

  def _text(self, i: int, rng: np.random.Generator) -> np.ndarray:
    """One caption's vector (uniform over the image's captions), or the empty caption's."""
    rows = self.text_rows[i]
    drop = rng.random() < self.caption_dropout
    if rows is None or drop:
      return self.empty_text
    return rows[rng.integers(len(rows))]


def random_crop_flip(image: np.ndarray, crop: int, flip: bool,
                     rng: np.random.Generator) -> np.ndarray:
  """A uniformly placed crop x crop window, mirrored left-right with probability 1/2."""
  h, w = image.shape[:2]
  top = int(rng.integers(h - crop + 1))
  left = int(rng.integers(w - crop + 1))
  out = image[top:top + crop, left:left + crop]
  if flip and rng.random() < 0.5:
    out = out[:, ::-1]
  return np.ascontiguousarray(out)
