"""Text-vector cache: caption embeddings per image, written by `jaxsemic embed-text`, read by training.

Format (docs/text.md): one safetensors file; tensor `<file>` = float32 [n_captions, D] (the `file` value of the
captions.jsonl line, e.g. `val2017/000000000139.jpg`), tensor `__empty__` = float32 [1, D], the vector of the
empty caption (caption dropout). Metadata: format, encoder, dim.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jaxsemic.errors import UserError
from jaxsemic.text.outputs import atomic_path

FORMAT = "jaxsemic-text-cache-v1"
EMPTY_KEY = "__empty__"


def save_text_cache(path: str | os.PathLike, vectors: Mapping[str, np.ndarray], *, encoder: str,
                    empty: np.ndarray, force: bool = False) -> None:
  """Writes {file: [n, D]} plus the empty-caption vector atomically (temp file, then os.replace)."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  empty = np.asarray(empty, np.float32).reshape(1, -1)
  dim = empty.shape[1]
  tensors = {EMPTY_KEY: empty}
  for name, v in vectors.items():
    v = np.ascontiguousarray(v, np.float32)
    if name == EMPTY_KEY or v.ndim != 2 or v.shape[1] != dim:
      raise ValueError(f"bad cache entry {name!r} with shape {v.shape} (dim {dim})")
    tensors[name] = v
  with atomic_path(path, force) as tmp:
    save_file(tensors, tmp, metadata={"format": FORMAT, "encoder": encoder, "dim": str(dim)})


def _open(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
  from safetensors import SafetensorError, safe_open  # pylint: disable=import-outside-toplevel
  path = Path(path)
  if not path.is_file():
    raise UserError(f"text cache {path} does not exist (create it with `jaxsemic embed-text`)")
  try:
    with safe_open(str(path), "np") as f:
      meta = f.metadata() or {}
      tensors = {k: f.get_tensor(k) for k in f.keys()}
  except (SafetensorError, OSError, ValueError) as e:
    raise UserError(f"{path} is not a text cache: {e}") from e
  if meta.get("format") != FORMAT:
    raise UserError(f"{path} is not a text cache (format {meta.get('format')!r}, expected {FORMAT})")
  return tensors, meta


def load_text_cache(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """{file: float32 [n_captions, D]} for every image of the cache."""
  tensors, _ = _open(path)
  tensors.pop(EMPTY_KEY, None)
  return tensors


def load_text_cache_info(path: str | os.PathLike) -> dict:
  """{'encoder': str, 'dim': int, 'empty': float32 [D] (the empty-caption vector), 'files': int}."""
  tensors, meta = _open(path)
  return {"encoder": meta.get("encoder", ""), "dim": int(meta["dim"]), "empty": tensors[EMPTY_KEY][0],
          "files": len(tensors) - 1}
