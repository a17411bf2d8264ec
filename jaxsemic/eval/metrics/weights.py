"""Where converted metric weights live (a user cache directory, never the repository) and their I/O."""

from __future__ import annotations

import os

import numpy as np

from jaxsemic.codec.params_file import flatten, unflatten  # noqa: F401  (the one safetensors layout)
from jaxsemic.errors import UserError


def metric_cache_dir() -> str:
  """$JAXSEMIC_CACHE/metrics, else $XDG_CACHE_HOME/jaxsemic/metrics, else ~/.cache/jaxsemic/metrics."""
  from jaxsemic import runtime  # pylint: disable=import-outside-toplevel
  return os.path.join(runtime.cache_root(), "metrics")


def save_params(path: str, params: dict, *, source: str) -> None:
  """Writes a nested params dict as safetensors (atomically), noting where it came from."""
  from safetensors.numpy import save_file
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  save_file(flatten(params), tmp, metadata={"source": source})
  from jaxsemic import io  # pylint: disable=import-outside-toplevel
  os.chmod(tmp, io.default_mode())  # safetensors creates its file owner-only
  os.replace(tmp, path)


def load_params(path: str, how_to_get: str) -> dict:
  """Reads a params file written by save_params; UserError telling how to make it if missing."""
  if not os.path.isfile(path):
    raise UserError(f"metric weights not found: {path} ({how_to_get})")
  from safetensors.numpy import load_file
  return unflatten(load_file(path))


def bind_params(module, params: dict):
  """fn(*inputs) = module.apply({'params': params}, *inputs), jitted with the params as an argument.

  Closing over the params instead would bake tens of MB of constants into the XLA program: slow to
  compile and to key in the persistent compilation cache.
  """
  import jax
  params = jax.device_put(params)
  apply = jax.jit(module.apply)
  return lambda *inputs: apply({"params": params}, *inputs)


def package_file(package: str, relative: str) -> str | None:
  """Path of a data file inside an installed (not imported) package, or None if it is absent."""
  import importlib.util
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    return None
  return os.path.join(list(spec.submodule_search_locations)[0], relative)


def _shapes(tree, prefix: str = "") -> dict[str, tuple[int, ...]]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict) or hasattr(value, "items"):
      out.update(_shapes(value, f"{prefix}{key}/"))
    else:
      out[f"{prefix}{key}"] = tuple(value.shape)
  return out


def shape_mismatches(params: dict, abstract: dict) -> list[str]:
  """Keys missing, unexpected or of the wrong shape in params vs an eval_shape tree (empty if none)."""
  want, got = _shapes(abstract), _shapes(params)
  return sorted(set(want) ^ set(got)) + sorted(k for k in set(want) & set(got) if want[k] != got[k])
