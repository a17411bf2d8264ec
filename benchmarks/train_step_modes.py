"""Our bmshj2018-hyperprior training step under each convolution-gradient mode, interleaved in one process.

  . .venv/bin/activate
  python benchmarks/train_step_modes.py [--modes auto,taps,xla] [--rounds 5]

Compiles the trainer's step (`jaxsemic.training.step.train_step`, N=128, M=192, batch 8 at 256x256, Adam 1e-4
after global-norm clipping to 1) once per `JAXSEMIC_CONV_WGRAD` mode (jaxsemic/layers/conv.py: `auto` is the
phase-conv input gradient of strided convs with XLA's weight gradient on CPU, `taps` adds the tap-matmul weight
gradient, `xla` is XLA's own VJP), checks that every mode gives the same loss and gradient norm, then runs
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

from machine import cpu_model, load
from train_throughput import our_step


def compiled_step(mode: str, batch: dict, rng: jax.Array):
  """(compiled step, initial state, compile seconds, first loss, first grad norm) with JAXSEMIC_CONV_WGRAD=mode."""
  from jaxsemic.codec.model_io import init_params  # pylint: disable=import-outside-toplevel
  cfg = {"name": "bmshj2018-hyperprior", "N": 128, "M": 192}
  step, state = our_step(init_params(cfg), cfg, donate=False)
  os.environ["JAXSEMIC_CONV_WGRAD"] = mode  # read when the step is traced
  t0 = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  seconds = time.perf_counter() - t0
  _, metrics = compiled(state, batch, rng)
  return compiled, state, seconds, float(metrics["loss"]), float(metrics["grad_norm"])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--modes", default="auto,taps,xla")
  parser.add_argument("--rounds", type=int, default=5)
  args = parser.parse_args()
  print(f"CPU {cpu_model()}, {os.cpu_count()} cores; load average {load()} at start", flush=True)
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
  print(f"{'mode':6s}{'min s/step':>12s}{'median':>9s}")
  for mode, t in times.items():
    print(f"{mode:6s}{min(t):12.3f}{statistics.median(t):9.3f}")
  print(f"load average {load()} at end")


if __name__ == "__main__":
  main()
