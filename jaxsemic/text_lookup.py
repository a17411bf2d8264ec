"""Captions for the encoder of text-guided models: from the command line, a captions file, or a text model."""

from __future__ import annotations

import functools
import json
import os

import numpy as np

from jaxsemic.errors import UserError


def caption_from_file(path: str, image_path: str) -> str:
  """The caption of `image_path` in a jsonl file of {'file', 'caption' | 'captions'} lines (first caption)."""
  if not os.path.isfile(path):
    raise UserError(f"captions file not found: {path}")
  name = os.path.basename(image_path)
  with open(path) as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        rec = json.loads(line)
      except json.JSONDecodeError as e:
        raise UserError(f"{path}:{n}: not JSON ({e.msg})") from e
      if os.path.basename(str(rec.get("file", ""))) == name:
        caps = rec.get("captions") or [rec.get("caption")]
        if caps and isinstance(caps[0], str):
          return caps[0]
  raise UserError(f"{path} has no caption for {name}")


@functools.lru_cache(maxsize=4)
def _encoder(name: str | None):
  try:
    from jaxsemic.text.embed import load_text_encoder
  except ImportError as e:
    raise UserError(f"the text encoder is not available in this installation ({e})") from e
  return load_text_encoder(name)


def embed_caption(caption: str, model, encoder_name: str | None = None) -> np.ndarray:
  """The model's semantic vector y2 for a caption, from the text encoder the model was trained with."""
  name = encoder_name or (model.metadata or {}).get("text_encoder")
  enc = _encoder(name)
  if enc.dim != model.cfg.text_dim:
    raise UserError(f"text encoder gives {enc.dim}-d vectors, the model expects {model.cfg.text_dim}")
  return np.asarray(enc.embed([caption]), np.float32)[0]
