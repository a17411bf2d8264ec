"""Model parameters as one safetensors file (the format of the models shipped as package data).

Keys are the '/'-joined paths of the nested Flax params dict; values float32. orbax directories stay the
format of training exports; a model directory may hold either `params/` (orbax) or `params.safetensors`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from jaxsemic.errors import UserError

FILENAME = "params.safetensors"


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
  """{'a/b/kernel': array} from a nested dict of arrays."""
  out = {}
  for k, v in params.items():
    key = f"{prefix}{k}"
    if isinstance(v, Mapping):
      out.update(flatten(v, key + "/"))
    else:
      out[key] = np.ascontiguousarray(np.asarray(v, np.float32))
  return out


def unflatten(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """The nested dict back from '/'-joined keys."""
  tree: dict[str, Any] = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


def save(path: str, params: Mapping[str, Any]) -> None:
  """Writes float32 params to `path` (safetensors)."""
  from safetensors.numpy import save_file
  save_file(flatten(params), path)


def load(path: str, abstract: Mapping[str, Any]) -> dict[str, Any]:
  """Reads params and checks every key and shape against `abstract` (ShapeDtypeStructs); UserError if not."""
  from safetensors import SafetensorError
  from safetensors.numpy import load_file
  try:
    flat = load_file(path)
  except (OSError, SafetensorError) as e:
    raise UserError(f"cannot read {path}: {str(e).splitlines()[0]}") from e
  want = {k: tuple(v.shape) for k, v in flat_leaves(abstract).items()}
  missing, extra = sorted(set(want) - set(flat)), sorted(set(flat) - set(want))
  if missing or extra:
    raise UserError(f"{path}: params do not match the model config: missing {missing[:3]}, unexpected {extra[:3]}")
  for k, shape in want.items():
    if tuple(flat[k].shape) != shape:
      raise UserError(f"{path}: parameter {k} has shape {tuple(flat[k].shape)}, the config implies {shape}")
    if not np.all(np.isfinite(flat[k])):
      raise UserError(f"{path}: parameter {k} has non-finite values")
  return unflatten({k: np.asarray(v, np.float32) for k, v in flat.items()})


def flat_leaves(abstract: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """{'a/b/kernel': leaf} from a nested dict, leaves unchanged (arrays or ShapeDtypeStructs)."""
  out = {}
  for k, v in abstract.items():
    if isinstance(v, Mapping):
      out.update(flat_leaves(v, f"{prefix}{k}/"))
    else:
      out[f"{prefix}{k}"] = v
  return out
