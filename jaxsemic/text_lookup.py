"""Captions for the encoder of text-guided models: from the command line, a captions file, or a text model."""

from __future__ import annotations

import functools
import os

import numpy as np

from jaxsemic.errors import UserError


def caption_from_file(path: str, image_path: str) -> str:
  """The first caption of `image_path` (matched by file name) in a jsonl captions file."""
  from jaxsemic.text.captions import read_captions
  name = os.path.basename(image_path)
  for file, caps in read_captions(path).items():
    if os.path.basename(file) == name and caps:
      return caps[0]
  raise UserError(f"{path} has no caption for {name}")


def caption_with_blip(blip_dir: str, image: np.ndarray, prompt: str = "a picture of") -> str:
  """Captions an image with a BLIP checkpoint directory (SELIC's g_a1)."""
  from jaxsemic.text.generate import Captioner
  return Captioner(blip_dir, prompt=prompt)([image])[0]


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
  if enc.dim != model.text_dim:
    raise UserError(f"text encoder gives {enc.dim}-d vectors, the model expects {model.text_dim}")
  return np.asarray(enc.embed([caption]), np.float32)[0]
