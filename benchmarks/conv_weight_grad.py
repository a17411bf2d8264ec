"""Convolution gradients on XLA:CPU: XLA's own VJP against `jaxsemic.layers.conv2d`'s, and against PyTorch.

  python benchmarks/conv_weight_grad.py [--batch 8]

For the layer shapes of a bmshj2018/SELIC training step at 256x256 crops, prints seconds of the forward pass and
of forward + backward (input and weight gradients) with XLA's convolution VJP (`JAXSEMIC_CONV_WGRAD=xla`), with
the CPU default (`auto`: strided input gradient as stride^2 phase convs, XLA's weight gradient), with `taps`
(also the weight gradient as one matmul per kernel tap), and with PyTorch (if installed) on the same shapes, then
the ratios; the modes alternate within each repeat. Also checks auto and taps against XLA's gradients.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.layers import Conv, TransposedConv
from machine import cpu_model, load, huge_pages

# (name, module factory, torch factory args, input side at 256 crops, input channels)
LAYERS = [
    ("conv 5x5/2 3->128", lambda: Conv(128, 5, 2), ("conv", 3, 128, 5, 2), 256, 3),
    ("conv 5x5/2 128->128", lambda: Conv(128, 5, 2), ("conv", 128, 128, 5, 2), 128, 128),
    ("conv 3x3 128->128", lambda: Conv(128, 3, 1), ("conv", 128, 128, 3, 1), 64, 128),
    ("tconv 5x5/2 128->128", lambda: TransposedConv(128, 5, 2), ("tconv", 128, 128, 5, 2), 64, 128),
    ("tconv 5x5/2 128->3", lambda: TransposedConv(3, 5, 2), ("tconv", 128, 3, 5, 2), 128, 128),
]


def _jax_fns(make, x, mode: str):
  """(forward, forward + backward, gradients) of `make()` on x with JAXSEMIC_CONV_WGRAD=mode, jitted."""
  os.environ["JAXSEMIC_CONV_WGRAD"] = mode
  mod = make()
  params = mod.init(jax.random.PRNGKey(1), x)
  fwd = jax.jit(mod.apply)
  grad = jax.jit(jax.grad(lambda p, x: jnp.sum(mod.apply(p, x) ** 2), argnums=(0, 1)))
  g = grad(params, x)  # traced (and compiled) now, while the mode is set
  jax.block_until_ready(fwd(params, x))
  return (lambda: jax.block_until_ready(fwd(params, x))), (lambda: jax.block_until_ready(grad(params, x))), g


def _interleaved(fns: dict, repeats: int) -> dict:
  """Best seconds of each function, the functions taking turns `repeats` times."""
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  return {name: min(t) for name, t in times.items()}


def _torch_fns(spec, batch: int, side: int):
  """(forward, forward + backward) of the PyTorch layer, or None without torch."""
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

  both()
  return fwd, both


def _rel_err(ours, ref) -> float:
  return max(float(jnp.abs(a - b).max() / (jnp.abs(b).max() + 1e-30))
             for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  malloc = huge_pages()  # as the trainer runs (jaxsemic/runtime.py)
  print(f"batch {args.batch}, CPU {cpu_model()}, {os.cpu_count()} cores, {malloc} (both sides), load average "
        f"{load()}; seconds, best of {args.repeats} interleaved repeats")
  print(f"{'layer':22s} {'fwd':>6s} {'f+b XLA':>8s} {'f+b auto':>8s} {'f+b taps':>8s} {'torch f':>8s} "
        f"{'torch f+b':>9s} {'auto/torch':>10s}  max rel. grad diff auto, taps")
  for name, make, spec, side, cin in LAYERS:
    x = jax.random.normal(jax.random.PRNGKey(0), (args.batch, side, side, cin))
    fns, grads = {}, {}
    for mode in ("xla", "auto", "taps"):
      fwd, fns[mode], grads[mode] = _jax_fns(make, x, mode)
    fns["fwd"] = fwd
    ref = _torch_fns(spec, args.batch, side)
    if ref:
      fns["torch f"], fns["torch f+b"] = ref
    t = _interleaved(fns, args.repeats)
    tf, tb = t.get("torch f", np.nan), t.get("torch f+b", np.nan)
    print(f"{name:22s} {t['fwd']:6.3f} {t['xla']:8.3f} {t['auto']:8.3f} {t['taps']:8.3f} {tf:8.3f} {tb:9.3f} "
          f"{t['auto'] / tb:10.2f}  {_rel_err(grads['auto'], grads['xla']):.1e}, "
          f"{_rel_err(grads['taps'], grads['xla']):.1e}", flush=True)
  print(f"load average {load()} at end")


if __name__ == "__main__":
  main()
