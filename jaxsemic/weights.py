"""Weight import shared by every importer (CompressAI, Hugging Face): transpose, validate, and the hub resolver.

Each importer keeps its own rename table (one per model family, next to its modules) and then goes through the
same two steps here (STYLE.md practice 7):
  transpose  PyTorch layouts -> Flax (`TRANSPOSES`: Linear [out,in] -> [in,out], Conv2d OIHW -> HWIO,
             ConvTranspose2d [in,out,kh,kw] -> [kh,kw,in,out]);
  validate   every parameter of the `jax.eval_shape` tree filled, with its shape, and no tensor left over;
             otherwise a one-line `UserError` naming the tensor.
`resolve_hub_dir` turns a local directory or a Hugging Face hub name into a directory, honouring
`HF_HUB_OFFLINE`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import traverse_util

from jaxsemic.errors import UserError

TRANSPOSES = {
    "id": lambda a: a,
    "linear": lambda a: a.T,  # torch Linear [out, in] -> flax Dense [in, out]
    "conv": lambda a: a.transpose(2, 3, 1, 0),  # torch Conv2d OIHW -> flax Conv HWIO
    "deconv": lambda a: a.transpose(2, 3, 0, 1),  # torch ConvTranspose2d [in, out, kh, kw] -> [kh, kw, in, out]
}

Path_ = tuple[str, ...]


def _leaf_shapes(abstract_params: Any) -> dict[Path_, tuple[tuple[int, ...], Any]]:
  return {tuple(str(getattr(k, "key", k)) for k in p): (tuple(v.shape), v.dtype)
          for p, v in jax.tree_util.tree_leaves_with_path(abstract_params)}


def validate(renamed: Mapping[Path_, tuple[str, np.ndarray]], abstract_params: Any, context: str = "",
             hint: str = "") -> dict[str, Any]:
  """{Flax path: (checkpoint key, array in Flax layout)} -> the nested param tree, checked against the abstract.

  `context` prefixes every message (e.g. "unet: "); `hint` ends the shape and leftover messages.
  """
  expected = _leaf_shapes(abstract_params)
  missing = [p for p in expected if p not in renamed]
  if missing:
    names = ", ".join("/".join(p) for p in missing[:5])
    raise UserError(f"{context}checkpoint lacks {len(missing)} parameter(s) of the model: {names}"
                    f"{' ...' if len(missing) > 5 else ''}")
  extra = [p for p in renamed if p not in expected]
  if extra:
    key = renamed[extra[0]][0]
    raise UserError(f"{context}unexpected tensor {key!r} (no parameter {'/'.join(extra[0])} in this model; "
                    f"{len(extra)} in all){hint}")
  flat = {}
  for path, (shape, dtype) in expected.items():
    key, value = renamed[path]
    if tuple(value.shape) != shape:
      raise UserError(f"{context}tensor {key!r} has shape {tuple(value.shape)} (Flax layout) but parameter "
                      f"{'/'.join(path)} expects {shape}{hint}")
    flat[path] = np.ascontiguousarray(value, dtype)
  return traverse_util.unflatten_dict(flat)


def hub_offline() -> bool:
  """HF_HUB_OFFLINE set to a true value."""
  return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def resolve_hub_dir(name_or_path: str | os.PathLike, allow_patterns: Sequence[str]) -> Path:
  """A local directory as is; a hub name downloaded (only the files matching `allow_patterns`) when online."""
  path = Path(name_or_path).expanduser()
  if path.is_dir():
    return path
  if path.exists():
    raise UserError(f"{path} is a file; expected a Hugging Face model directory (config.json + weights)")
  name = str(name_or_path)
  if name.startswith((".", "/", "~")) or name.count("/") > 1:
    raise UserError(f"model directory {name} does not exist")
  if hub_offline():
    raise UserError(f"{name} is neither a local directory nor usable offline (HF_HUB_OFFLINE is set); "
                    "download it elsewhere and pass its directory")
  try:
    import huggingface_hub  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(f"{name} is not a local directory and huggingface_hub is not installed "
                    "(pip install huggingface_hub) to download it") from e
  try:
    return Path(huggingface_hub.snapshot_download(name, allow_patterns=list(allow_patterns)))
  except Exception as e:  # noqa: BLE001 - network / auth / missing repo: one line for the user.
    raise UserError(f"could not download {name} from the Hugging Face hub (offline? pass a local model "
                    f"directory): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
