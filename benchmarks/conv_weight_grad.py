"""Convolution gradients on XLA:CPU: XLA's own VJP against `jaxsemic.layers.conv2d`'s, and against PyTorch.

  python benchmarks/conv_weight_grad.py [--batch 8]

For the layer shapes of a bmshj2018/SELIC training step at 256x256 crops, prints seconds of the forward pass and
of forward + backward (input and weight gradients) with XLA's convolution VJP (`JAXSEMIC_CONV_WGRAD=xla`), with
ours (weight gradient as one matmul per kernel tap, strided input gradient as stride^2 phase convs), and with
PyTorch (if installed) on the same shapes, then the ratios. Also checks ours against XLA's gradients.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.layers import Conv, TransposedConv

# (name, module factory, torch factory args, input side at 256 crops, input channels)
LAYERS = [
    ("conv 5x5/2 3->128", lambda: Conv(128, 5, 2), ("conv", 3, 128, 5, 2), 256, 3),
    ("conv 5x5/2 128->128", lambda: Conv(128, 5, 2), ("conv", 128, 128, 5, 2), 128, 128),
    ("conv 3x3 128->128", lambda: Conv(128, 3, 1), ("conv", 128, 128, 3, 1), 64, 128),
    ("tconv 5x5/2 128->128", lambda: TransposedConv(128, 5, 2), ("tconv", 128, 128, 5, 2), 64, 128),
    ("tconv 5x5/2 128->3", lambda: TransposedConv(3, 5, 2), ("tconv", 128, 3, 5, 2), 128, 128),
]


def _best(fn, repeats: int) -> float:
  fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return min(times)


def _jax_times(make, x, mode: str, repeats: int):
  os.environ["JAXSEMIC_CONV_WGRAD"] = mode
  mod = make()
  params = mod.init(jax.random.PRNGKey(1), x)
  fwd = jax.jit(mod.apply)
  grad = jax.jit(jax.grad(lambda p, x: jnp.sum(mod.apply(p, x) ** 2), argnums=(0, 1)))
  g = grad(params, x)
  return (_best(lambda: jax.block_until_ready(fwd(params, x)), repeats),
          _best(lambda: jax.block_until_ready(grad(params, x)), repeats), g)


def _torch_times(spec, batch: int, side: int, repeats: int):
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  kind, cin, cout, k, s = spec
  torch.set_num_threads(os.cpu_count() or 1)
  layer = (torch.nn.Conv2d(cin, cout, k, s, k // 2) if kind == "conv"
           else torch.nn.ConvTranspose2d(cin, cout, k, s, k // 2, s - 1))
  x = torch.randn(batch, cin, side, side, requires_grad=True)

  def fwd():
    with torch.no_grad():
      layer(x)

  def both():
    x.grad = None
    layer.zero_grad()
    (layer(x) ** 2).sum().backward()

  return _best(fwd, repeats), _best(both, repeats)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()
  print(f"batch {args.batch}, CPU cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; seconds, best "
        f"of {args.repeats}")
  print(f"{'layer':22s} {'fwd':>6s} {'f+b XLA':>8s} {'f+b ours':>8s} {'torch f':>8s} {'torch f+b':>9s} "
        f"{'XLA/ours':>8s} {'ours/torch':>10s}  max rel. grad diff")
  for name, make, spec, side, cin in LAYERS:
    x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, side, side, cin))
    _, t_xla, g_xla = _jax_times(make, x, "xla", args.repeats)
    t_fwd, t_ours, g_ours = _jax_times(make, x, "taps", args.repeats)
    err = max(float(jnp.abs(a - b).max() / (jnp.abs(b).max() + 1e-30))
              for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_xla)))
    ref = _torch_times(spec, args.batch, side, args.repeats)
    tf, tb = ref if ref else (np.nan, np.nan)
    print(f"{name:22s} {t_fwd:6.3f} {t_xla:8.3f} {t_ours:8.3f} {tf:8.3f} {tb:9.3f} {t_xla / t_ours:8.2f} "
          f"{t_ours / tb:10.2f}  {err:.1e}", flush=True)


if __name__ == "__main__":
  main()
