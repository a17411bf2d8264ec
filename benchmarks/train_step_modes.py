"""Our bmshj2018-hyperprior training step under each convolution-gradient mode, interleaved in one process.

  . .venv/bin/activate
  python benchmarks/train_step_modes.py [--modes auto,taps,xla] [--rounds 5]

Compiles the trainer's step (`jaxsemic.training.step.train_step`, N=128, M=192, batch 8 at 256x256, Adam 1e-4
after global-norm clipping to 1) once per mode `wgrad[:microbatches]`: `JAXSEMIC_CONV_WGRAD` (jaxsemic/layers/
conv.py: `auto` is the phase-conv input gradient of strided convs with XLA's weight gradient on CPU, `taps` adds
the tap-matmul weight gradient, `xla` is XLA's own VJP) and `config.microbatches` (0 or absent: auto, i.e. 4 here;
a different count draws different noise, so only modes with the same count give the same loss), prints each
mode's loss and gradient norm, then runs
--rounds rounds of 2 steps per mode, the modes taking turns so they see the same machine load. Prints the CPU
model, load average, and the seconds per step (min and median over rounds) per mode. No CompressAI here:
`train_throughput.py` compares with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from machine import cpu_model, load, huge_pages
from train_throughput import our_step


def compiled_step(mode: str, batch: dict, rng: jax.Array):
  """(compiled step, initial state, compile seconds, first loss, first grad norm) for mode `wgrad[:microbatches]`."""
  from jaxsemic.codec.model_io import init_params  # pylint: disable=import-outside-toplevel
  from jaxsemic.training.step import resolve_microbatches  # pylint: disable=import-outside-toplevel
  wgrad, _, parts = mode.partition(":")
  cfg = {"name": "bmshj2018-hyperprior", "N": 128, "M": 192}
  b, size = batch["image"].shape[:2]
  step, state = our_step(init_params(cfg), cfg, donate=False,
                         microbatches=resolve_microbatches(int(parts or 0), b, size, "cpu"))
  os.environ["JAXSEMIC_CONV_WGRAD"] = wgrad  # read when the step is traced
  t0 = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  seconds = time.perf_counter() - t0
  _, metrics = compiled(state, batch, rng)
  return compiled, state, seconds, float(metrics["loss"]), float(metrics["grad_norm"])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--modes", default="auto,auto:1,taps,xla",
                      help="JAXSEMIC_CONV_WGRAD[:config.microbatches], microbatches 0 or absent = auto")
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  malloc = huge_pages()  # as the trainer runs (jaxsemic/runtime.py)
  print(f"CPU {cpu_model()}, {os.cpu_count()} cores; {malloc}; load average {load()} at start", flush=True)
  crops = np.random.default_rng(0).integers(0, 256, (8, 256, 256, 3), dtype=np.uint8)
  batch, rng = {"image": jnp.asarray(crops)}, jax.random.PRNGKey(0)
  steps = {}
  for mode in args.modes.split(","):
    compiled, state, seconds, loss, gnorm = compiled_step(mode, batch, rng)
    steps[mode] = (compiled, state)
    print(f"{mode}: compiled in {seconds:.1f} s; first loss {loss:.4f}, gradient norm {gnorm:.3f}", flush=True)
  times = {mode: [] for mode in steps}
  for r in range(args.rounds):
    for mode, (compiled, state) in steps.items():
      t0 = time.perf_counter()
      for _ in range(2):  # the state is not donated: both steps start from the same one
        _, metrics = compiled(state, batch, rng)
      float(metrics["loss"])
      times[mode].append((time.perf_counter() - t0) / 2)
    print(f"round {r + 1}: " + ", ".join(f"{m} {t[-1]:.3f} s" for m, t in times.items()) + f"; load {load()}",
          flush=True)
  print(f"{'mode':8s}{'min s/step':>12s}{'median':>9s}")
  for mode, t in times.items():
    print(f"{mode:8s}{min(t):12.3f}{statistics.median(t):9.3f}")
  print(f"load average {load()} at end")


if __name__ == "__main__":
  main()
