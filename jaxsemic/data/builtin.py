"""Built-in training photos: the natural images bundled with scikit-image, with captions we wrote."""

from __future__ import annotations

import json
import os

from jaxsemic.errors import UserError

CAPTIONS_FILE = os.path.join(os.path.dirname(__file__), "builtin_captions.jsonl")
# Optional: text vectors of the captions above (written by `jaxsemic embed-text` when available).
TEXT_CACHE_FILE = os.path.join(os.path.dirname(__file__), "builtin_text.safetensors")


def photo_dir() -> str:
  """The folder of scikit-image's bundled data files."""
  try:
    import skimage.data  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError("no data folder given and scikit-image is not installed "
                    "(pip install scikit-image, or set --config.data.train_dir)") from e
  return os.path.dirname(skimage.data.__file__)


def captions() -> dict[str, list[str]]:
  """File name -> the captions we wrote for it."""
  with open(CAPTIONS_FILE, encoding="utf-8") as f:
    items = [json.loads(line) for line in f if line.strip()]
  return {it["file"]: it["captions"] for it in items}


def photo_paths() -> list[str]:
  """Absolute paths of the built-in photos (those listed in the captions file)."""
  root = photo_dir()
  paths = [os.path.join(root, name) for name in captions()]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise UserError(f"scikit-image lacks bundled photo {missing[0]} (set --config.data.train_dir)")
  return paths


def text_cache_path() -> str:
  """The built-in caption vectors, or '' if none have been computed."""
  return TEXT_CACHE_FILE if os.path.exists(TEXT_CACHE_FILE) else ""
