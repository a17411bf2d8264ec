"""Loading Python config files (`get_config()` returning an ml_collections.ConfigDict) outside absl."""

from __future__ import annotations

import importlib.util
import os

import ml_collections

from jaxsemic.errors import UserError


PACKAGED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def resolve_config_path(spec: str) -> str:
  """`configs/NAME.py[:arg]` -> the packaged copy when no such file exists here (an installed jaxsemic run
  from another folder); any other spec unchanged."""
  path, sep, arg = spec.partition(":")
  packaged = os.path.join(PACKAGED, os.path.basename(path))
  if (not os.path.isfile(path) and os.path.normpath(os.path.dirname(path)) == "configs"
      and os.path.isfile(packaged)):
    return packaged + sep + arg
  return spec


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `path.py` or `path.py:arg` (big_vision style) and returns `get_config([arg])`."""
  path, _, arg = resolve_config_path(spec).partition(":")
  if not os.path.isfile(path):
    raise UserError(f"config file not found: {path}")
  module_spec = importlib.util.spec_from_file_location(f"_jaxsemic_config_{abs(hash(path))}", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # noqa: BLE001 - the user's file: report, don't trace.
    raise UserError(f"cannot load config {path}: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise UserError(f"config {path} defines no get_config()")
  return module.get_config(arg) if arg else module.get_config()
