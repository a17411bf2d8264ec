"""Precomputed text vectors (one [n_captions, D] array per image) that the input pipeline carries."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from jaxsemic.errors import UserError

# Key under which a plain .npz cache may store the [1, D] vector of the empty caption (caption dropout).
EMPTY_CAPTION_KEY = "__empty__"


def load_vectors(path: str) -> dict[str, np.ndarray]:
  """{file key: [n, D]} (plus EMPTY_CAPTION_KEY if known) from a text-vector cache.

  The cache is `jaxsemic embed-text`'s safetensors file (`jaxsemic.text.cache`), or a plain .npz
  holding one [n, D] (or [D]) array per file.
  """
  if not os.path.exists(path):
    raise UserError(f"text-vector cache not found: {path}")
  if path.endswith(".npz"):
    try:
      with np.load(path, allow_pickle=False) as f:
        table = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
      raise UserError(f"cannot read text-vector cache {path}: {e}") from e
  else:
    from jaxsemic.text import cache  # pylint: disable=import-outside-toplevel
    table = cache.load_text_cache(path)
    table[EMPTY_CAPTION_KEY] = cache.load_text_cache_info(path)["empty"]
  out = {}
  for key, value in table.items():
    arr = np.asarray(value, np.float32)
    out[str(key)] = arr[None] if arr.ndim == 1 else arr
  dims = {v.shape[-1] for v in out.values()}
  if len(dims) > 1:
    raise UserError(f"text-vector cache {path} mixes vector sizes {sorted(dims)}")
  return out


def vectors_for_files(table: Mapping[str, np.ndarray], keys: Sequence[str],
                      dim: int) -> tuple[list[np.ndarray | None], np.ndarray]:
  """Matches images (keys relative to the data root) to cache rows; returns (per-image rows, empty vector).

  A cache key matches an image when it equals the image key, or one is a '/'-suffix of the other
  (caches written relative to a sub-folder, or with absolute paths). Images without a match get None.
  """
  by_suffix = {}
  for k in table:
    if k == EMPTY_CAPTION_KEY:
      continue
    parts = k.replace(os.sep, "/").split("/")
    for i in range(len(parts)):
      by_suffix.setdefault("/".join(parts[i:]), k)
  rows = []
  for key in keys:
    parts = key.split("/")
    hit = next((by_suffix[s] for s in ("/".join(parts[i:]) for i in range(len(parts)))
                if s in by_suffix and s), None)
    rows.append(None if hit is None else table[hit])
  for r in rows:
    if r is not None and r.shape[-1] != dim:
      raise UserError(f"text vectors have size {r.shape[-1]} but the model expects "
                      f"text_dim={dim} (set --config.model.text_dim)")
  empty = table.get(EMPTY_CAPTION_KEY)
  empty = np.zeros((dim,), np.float32) if empty is None else np.asarray(empty, np.float32)[0]
  return rows, empty
