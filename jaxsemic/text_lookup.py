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


def _local_encoder_files(name: str | None) -> list | None:
  """(path, size, mtime) of every file of a local text encoder directory; None for a hub name."""
  from jaxsemic.text.embed import DEFAULT_ALIASES, default_model_dir
  if name is None or (name in DEFAULT_ALIASES and not os.path.isdir(name)):
    root = str(default_model_dir())
  elif os.path.isdir(name):
    root = os.path.abspath(name)
  else:
    return None
  out = []
  for folder, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
      st = os.stat(os.path.join(folder, f))
      out.append([os.path.join(folder, f), st.st_size, st.st_mtime_ns])
  return out


def embed_caption(caption: str, model, encoder_name: str | None = None) -> np.ndarray:
  """The model's semantic vector y2 for a caption, from the text encoder the model was trained with.

  Vectors of a local encoder are cached on disk (`runtime.cached_arrays`, keyed by the caption, the encoder's
  files and the code), so a repeated caption (the empty one above all) needs no text model.
  """
  from jaxsemic import runtime
  name = encoder_name or (model.metadata or {}).get("text_encoder")
  files = _local_encoder_files(name)
  compute = lambda: {"v": np.asarray(_encoder(name).embed([caption]), np.float32)[0]}
  v = compute()["v"] if files is None else runtime.cached_arrays("text_vectors", [caption, files], compute)["v"]
  if v.shape[-1] != model.text_dim:
    raise UserError(f"text encoder gives {v.shape[-1]}-d vectors, the model expects {model.text_dim}")
  return v
