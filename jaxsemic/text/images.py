"""Image preprocessing of the HF vision towers (BLIP, CLIP): bicubic resize to a square, then normalise."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP statistics, also BLIP's
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass(frozen=True)
class ImageProcessing:
  """Resize to `size` (bicubic) and normalise with `mean`/`std` (from preprocessor_config.json)."""
  size: int
  mean: tuple[float, ...] = CLIP_MEAN
  std: tuple[float, ...] = CLIP_STD

  @classmethod
  def from_dir(cls, model_dir: Path, size: int) -> "ImageProcessing":
    """Mean/std from `preprocessor_config.json` if the directory has one, else CLIP's."""
    path = Path(model_dir) / "preprocessor_config.json"
    cfg = json.loads(path.read_text()) if path.is_file() else {}
    return cls(size, tuple(cfg.get("image_mean", CLIP_MEAN)), tuple(cfg.get("image_std", CLIP_STD)))

  def __call__(self, image: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] -> float32 [size,size,3]."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    resized = np.asarray(Image.fromarray(image).resize((self.size, self.size), Image.BICUBIC), np.float32)
    return ((resized / 255.0 - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32))
