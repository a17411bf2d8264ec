"""Hugging Face model directories -> Flax parameter trees (rename here; transpose, validate in `jaxsemic.weights`).

Import happens in three visible steps (STYLE.md practice 7):
  1. rename: every checkpoint key goes through the model family's rule table (one table per family,
     defined next to the Flax module: `bert.BERT_RULES`, `clip_text.CLIP_TEXT_RULES`, `blip.BLIP_RULES`);
  2. transpose: each rule names how the array is laid out differently in Flax (`linear`: [out,in] -> [in,out],
     `conv`: OIHW -> HWIO);
  3. validate: the result must have exactly the keys and shapes of the `jax.eval_shape` tree of the module;
     any difference is a `UserError` naming the parameter.

Numbered sub-modules (`encoder.layer.3.`) become Flax names `layer_3` before the rules run, so the rule tables
only describe leaves. PyTorch is imported only to read legacy `pytorch_model.bin` files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxsemic import weights
from jaxsemic.errors import UserError

# (regex over the whole checkpoint key, replacement template with '.' separators, transform name).
Rule = tuple[str, str, str]

TRANSFORMS = weights.TRANSPOSES  # the transposes shared by every importer

_INDEX = re.compile(r"\.(\d+)(?=\.)")


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
  """Returns a local directory for a path, or downloads a hub name when online (HF_HUB_OFFLINE respected)."""
  return weights.resolve_hub_dir(name_or_path, ["*.json", "*.txt", "*.safetensors", "*.model", "*/*.json"])


def read_config(model_dir: Path) -> dict[str, Any]:
  """Reads `config.json` of a Hugging Face model directory."""
  path = Path(model_dir) / "config.json"
  if not path.is_file():
    raise UserError(f"{model_dir} has no config.json; expected a Hugging Face model directory")
  try:
    return json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise UserError(f"{path} is not valid JSON: {e}") from e


def read_state_dict(model_dir: Path) -> dict[str, np.ndarray]:
  """Reads all weights of a directory as float32/int numpy arrays (safetensors, sharded or pytorch_model.bin)."""
  model_dir = Path(model_dir)
  single, index = model_dir / "model.safetensors", model_dir / "model.safetensors.index.json"
  if single.is_file():
    return _read_safetensors([single])
  if index.is_file():
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    return _read_safetensors([model_dir / s for s in shards])
  legacy = model_dir / "pytorch_model.bin"
  if legacy.is_file():
    return _read_torch_bin(legacy)
  raise UserError(f"{model_dir} has no model.safetensors or pytorch_model.bin")


def _read_safetensors(files: Sequence[Path]) -> dict[str, np.ndarray]:
  from safetensors import SafetensorError  # pylint: disable=import-outside-toplevel
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  out = {}
  for f in files:
    if not f.is_file():
      raise UserError(f"weight shard {f} is missing")
    try:
      out.update(load_file(str(f)))
    except (SafetensorError, OSError, ValueError) as e:
      raise UserError(f"cannot read weights {f}: {e}") from e
  return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in out.items()}


def _read_torch_bin(path: Path) -> dict[str, np.ndarray]:
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(f"{path} is a PyTorch pickle; install torch to read it, or convert it to "
                    "model.safetensors") from e
  try:
    sd = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:  # noqa: BLE001 - corrupt or foreign pickle.
    raise UserError(f"cannot read weights {path}: {type(e).__name__}: {e}") from e
  return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in sd.items()}


def rename(state_dict: Mapping[str, np.ndarray], rules: Sequence[Rule],
           ignore: Sequence[str] = ()) -> dict[tuple[str, ...], tuple[str, np.ndarray]]:
  """Steps 1+2: maps checkpoint keys to Flax paths and transposes; returns {flax_path: (hf_key, array)}."""
  out = {}
  for key, value in state_dict.items():
    if any(re.fullmatch(p, key) for p in ignore):
      continue
    flat = _INDEX.sub(r"_\1", key)
    for pattern, template, transform in rules:
      m = re.fullmatch(pattern, flat)
      if m:
        path = tuple(m.expand(template).split("."))
        out[path] = (key, np.asarray(TRANSFORMS[transform](value)))
        break
    else:
      raise UserError(f"checkpoint weight {key!r} matches no rule of this model family "
                      "(wrong model type for this loader?)")
  return out


def convert(state_dict: Mapping[str, np.ndarray], rules: Sequence[Rule], abstract_params: Any,
            ignore: Sequence[str] = ()) -> dict[str, Any]:
  """Renames, transposes and checks every key and shape against `abstract_params`; returns device arrays."""
  renamed = rename(state_dict, rules, ignore)
  return jax.device_put(weights.validate(renamed, abstract_params,
                                         hint=" (config.json does not match the weights?)"))


def strip_prefix(state_dict: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  """Keeps only keys under `prefix` and removes it (e.g. 'bert.' of BertForMaskedLM checkpoints)."""
  return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
