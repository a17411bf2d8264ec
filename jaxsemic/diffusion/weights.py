"""diffusers (PyTorch) state dicts -> Flax params, in three visible steps: rename, transpose, validate.

1. Rename: the module's table below (applied in order, plain substring replacements), then the rule
   common to all modules: a list index `name.N.` becomes the Flax submodule name `name_N.`
   (`down_blocks.0.resnets.1.conv1` -> `down_blocks_0/resnets_1/conv1`, `to_out.0` -> `to_out_0`).
   The leaf `weight` becomes `kernel` (Conv/Dense) or `scale` (GroupNorm/LayerNorm), whichever the
   abstract parameter tree has; `bias` stays.
2. Transpose: conv OIHW -> HWIO, Linear (out, in) -> (in, out); a 1x1 conv weight feeding a Dense (old VAE
   attention checkpoints) is squeezed first.
3. Validate: every tensor must land on a parameter of the `jax.eval_shape` tree with the same shape, and
   every parameter must be filled; otherwise a UserError names the tensor.
"""

import re
from collections.abc import Mapping

import jax
import numpy as np

from jaxsemic.errors import UserError

# One name-mapping table per module family: (diffusers substring, our substring).
UNET_TABLE: tuple[tuple[str, str], ...] = ()  # names match diffusers one to one
CONTROLNET_TABLE: tuple[tuple[str, str], ...] = ()  # names match diffusers one to one
VAE_TABLE: tuple[tuple[str, str], ...] = (
    # Checkpoints saved before diffusers 0.14 (e.g. the SD 1.x hub repos) use the old attention names.
    ('.attentions.0.query.', '.attentions.0.to_q.'),
    ('.attentions.0.key.', '.attentions.0.to_k.'),
    ('.attentions.0.value.', '.attentions.0.to_v.'),
    ('.attentions.0.proj_attn.', '.attentions.0.to_out.0.'),
)
TABLES = {'unet': UNET_TABLE, 'controlnet': CONTROLNET_TABLE, 'vae': VAE_TABLE}

_INDEX = re.compile(r'\.(\d+)(?=\.)')


def rename(key: str, table: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
  """diffusers key -> Flax path without the leaf ('weight'/'bias' kept as the last element)."""
  for old, new in table:
    key = key.replace(old, new)
  return tuple(_INDEX.sub(r'_\1', key).split('.'))


def diffusers_name(path: tuple[str, ...]) -> str:
  """Flax param path -> the diffusers tensor name it is loaded from (for error messages)."""
  leaf = {'kernel': 'weight', 'scale': 'weight'}.get(path[-1], path[-1])
  return re.sub(r'(?<!linear)_(\d+)(?=\.|$)', r'.\1', '.'.join(path[:-1])) + '.' + leaf


def transpose(value: np.ndarray, target_ndim: int) -> np.ndarray:
  """PyTorch layout -> Flax layout: conv OIHW -> HWIO, Linear .T, 1x1 conv -> Dense."""
  if value.ndim == 4 and target_ndim == 2 and value.shape[2:] == (1, 1):
    value = value[:, :, 0, 0]
  if value.ndim == 4:
    return np.transpose(value, (2, 3, 1, 0))
  if value.ndim == 2:
    return value.T
  return value


def _flat_shapes(abstract_params) -> dict[tuple[str, ...], tuple[int, ...]]:
  """Flatten an eval_shape param tree to {path: shape}."""
  leaves = jax.tree_util.tree_flatten_with_path(abstract_params)[0]
  return {tuple(p.key for p in path): tuple(leaf.shape) for path, leaf in leaves}


def convert_state_dict(state: Mapping[str, np.ndarray], abstract_params, module: str) -> dict:
  """Rename + transpose + validate a diffusers state dict against the abstract Flax param tree."""
  table = TABLES[module]
  expected = _flat_shapes(abstract_params)
  flat = {}
  for key, value in state.items():
    path = rename(key, table)
    if path[-1] == 'weight':
      path = next((path[:-1] + (leaf,) for leaf in ('kernel', 'scale') if path[:-1] + (leaf,) in expected),
                  path[:-1] + ('kernel',))
    if path not in expected:
      raise UserError(f'{module}: unexpected tensor {key!r} (no parameter {"/".join(path)} in this config)')
    value = transpose(np.asarray(value), len(expected[path]))
    if value.shape != expected[path]:
      raise UserError(f'{module}: tensor {key!r} has shape {tuple(np.asarray(state[key]).shape)}, '
                      f'expected {expected[path]} after transposing for {"/".join(path)}')
    if path in flat:
      raise UserError(f'{module}: tensor {key!r} duplicates another name for {"/".join(path)}')
    flat[path] = value
  missing = [path for path in expected if path not in flat]
  if missing:
    raise UserError(f'{module}: checkpoint lacks tensor {diffusers_name(missing[0])!r} '
                    f'({len(missing)} missing in all)')
  return _unflatten(flat)


def _unflatten(flat: dict[tuple[str, ...], np.ndarray]) -> dict:
  """{path: array} -> nested dict."""
  tree: dict = {}
  for path, value in flat.items():
    node = tree
    for part in path[:-1]:
      node = node.setdefault(part, {})
    node[path[-1]] = value
  return tree
