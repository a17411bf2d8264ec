"""Writes the CompressAI parity fixtures under tests/fixtures/compressai/ (run in CompressAI's own venv).

CompressAI pins numpy<2, so it lives in a separate venv (docs/zoo.md has the exact commands):

  /work/venv-compressai/bin/python tools/compressai_fixtures.py --out tests/fixtures/compressai

For each architecture: a small model (N=8, N=6 for cheng2020) with seeded random weights (entropy-bottleneck medians,
factors and GDN gammas perturbed so that every parameter matters), a fixed 64x64 uint8 input, and the eval-mode
outputs of CompressAI's forward pass: y, y_hat, the likelihoods of y and z, x_hat. Saved as one .npz per
architecture with the state dict under `sd/<key>` (NCHW tensors as PyTorch has them).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from compressai.zoo import image as zoo_image

ARCHS = {  # name -> constructor kwargs (small sizes; cheng2020 has M = N)
    "bmshj2018-factorized": {"N": 8, "M": 12},
    "bmshj2018-hyperprior": {"N": 8, "M": 12},
    "mbt2018-mean": {"N": 8, "M": 12},
    "mbt2018": {"N": 8, "M": 12},
    "cheng2020-anchor": {"N": 6},
    "cheng2020-attn": {"N": 6},
}


Y_GAIN = 25.0
SCALE_OFFSET = 3.0


def build(name: str, seed: int, **sizes) -> torch.nn.Module:
  """The CompressAI model (ARCHS sizes unless given) with its default init, perturbed so that no parameter
  sits at a symmetric value; also used by benchmarks/vs_compressai.py."""
  torch.manual_seed(seed)
  net = zoo_image.model_architectures[name](**(sizes or ARCHS[name]))
  g = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for key, p in net.named_parameters():
      if key.endswith("quantiles"):  # medians off zero, tails around them
        med = torch.rand(p.shape[0], generator=g) - 0.5
        p.copy_(torch.stack([med - 10, med, med + 10], -1)[:, None, :])
      elif "factors" in key or "matrices" in key or key.endswith(("_factor0", "_matrix0")):
        p.add_(0.1 * torch.randn(p.shape, generator=g))
      elif key.endswith("gamma"):  # GDN: keep the reparametrised gamma positive but not diagonal
        p.add_(0.02 * torch.rand(p.shape, generator=g))
      elif key.endswith("beta"):
        p.mul_(1 + 0.1 * torch.rand(p.shape, generator=g))
      elif key.endswith("bias"):
        p.add_(0.05 * torch.randn(p.shape, generator=g))
    # An untrained g_a gives |y| << 1, which rounds to 0 everywhere; scale its last conv so that y spans
    # several quantisation bins and the likelihoods are far from 0 and 1.
    last = [m for m in net.g_a if isinstance(m, torch.nn.Conv2d)][-1]
    last.weight.mul_(Y_GAIN)
    last.bias.mul_(Y_GAIN)
    # ... and raise the predicted scales (the first M output channels) above the 0.11 bound to match.
    head = net.entropy_parameters[4] if hasattr(net, "entropy_parameters") else getattr(net, "h_s", [None] * 5)[4]
    if head is not None:
      head.bias[:net.M].add_(SCALE_OFFSET)
  return net.eval()


def test_image(seed: int, h: int = 64, w: int = 64) -> np.ndarray:
  """A smooth colour ramp plus noise, uint8 [h, w, 3] (the model sees it / 255)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
  base = np.stack([xx, yy, 0.5 + 0.4 * np.sin(6 * xx + 3 * yy)])
  img = np.clip(base + 0.1 * rng.standard_normal((3, h, w)), 0, 1)
  return np.round(img.transpose(1, 2, 0) * 255).astype(np.uint8)


@torch.no_grad()
def outputs(name: str, net: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
  """y, y_hat and the likelihoods exactly as CompressAI's eval-mode forward computes them, and x_hat."""
  out = net(x)
  y = net.g_a(x)
  res = {"x_hat": out["x_hat"], "y": y, "likelihoods_y": out["likelihoods"]["y"]}
  if "z" in out["likelihoods"]:
    res["likelihoods_z"] = out["likelihoods"]["z"]
  if name == "bmshj2018-factorized":
    res["y_hat"], _ = net.entropy_bottleneck(y)
  elif name == "bmshj2018-hyperprior":
    res["y_hat"] = torch.round(y)
  elif name == "mbt2018-mean":
    z_hat, _ = net.entropy_bottleneck(net.h_a(y))
    scales, means = net.h_s(z_hat).chunk(2, 1)
    res["y_hat"] = torch.round(y - means) + means
  else:  # context models: the context and g_s see round(y)
    res["y_hat"] = torch.round(y)
  return res


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="tests/fixtures/compressai")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  import compressai
  for i, name in enumerate(ARCHS):
    net = build(name, args.seed + 10 * i)
    image = test_image(args.seed + 10 * i)
    x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
    res = outputs(name, net, x)
    arrays = {f"sd/{k}": v.numpy() for k, v in net.state_dict().items()}
    arrays.update({k: v.numpy() for k, v in res.items()})
    arrays["image"] = image
    arrays["meta"] = np.array([name, compressai.__version__, torch.__version__])
    path = os.path.join(args.out, f"{name}.npz")
    np.savez_compressed(path, **arrays)
    print(f"{path}: {os.path.getsize(path) / 1024:.0f} KB, {sum(p.numel() for p in net.parameters())} params")


if __name__ == "__main__":
  main()
