"""Speed of our bmshj2018-hyperprior against CompressAI's, same random weights, same CPU, one invocation.

  . /work/venv/bin/activate
  python benchmarks/vs_compressai.py --compressai-python /work/venv-compressai/bin/python

CompressAI runs in its own venv (it pins numpy<2; docs/zoo.md) through a subprocess of this same file
(`--reference`, benchmarks/reference_side.py), which also writes the shared weights. Measured, after one
warm-up (compilation excluded and reported apart): compress + decompress seconds of a 768x512 image (median of
--repeats), and training-step throughput (batch 8, 256x256 crops, Adam + clipping, loss bpp + lambda 255^2
MSE). Prints ours / theirs.
Targets (issue 6): compress + decompress <= 0.7x CompressAI's time, training throughput >= 1.3x.
The two runs take turns on the same cores; on a shared machine the absolute numbers move, the ratios less.
Two CompressAI processes by default, one with glibc's defaults and one with the huge-page tunable our side
runs with (`--compressai-malloc`, reference_side.py); every ratio is printed against both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import numpy as np

import reference_side
from machine import cpu_model

ARCH = "bmshj2018-hyperprior"


def test_image(h: int = 512, w: int = 768) -> np.ndarray:
  """A deterministic natural-looking uint8 image: scikit-image's astronaut tiled/cropped to h x w."""
  from skimage import data
  a = data.astronaut()
  return np.ascontiguousarray(np.tile(a, (2, 2, 1))[:h, :w])


def train_batch(batch: int = 8, size: int = 256) -> np.ndarray:
  img = test_image()
  rng = np.random.default_rng(0)
  out = []
  for _ in range(batch):
    r, c = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
    out.append(img[r:r + size, c:c + size])
  return np.stack(out)


def _timed(fn, repeats: int) -> tuple[float, float]:
  """(first call seconds, median of the next `repeats` calls)."""
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return first, statistics.median(times)


# --- CompressAI (runs in the CompressAI venv) ------------------------------------------------------------------

def reference(args) -> dict:
  import torch
  net = reference_side.build(ARCH, args.weights, N=args.N, M=args.M)
  net.update(force=True)
  with np.load(args.inputs) as z:
    image, crops = z["image"], z["batch"]
  x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
  res = reference_side.torch_info()

  def codec():
    with torch.no_grad():
      enc = net.compress(x)
      net.decompress(enc["strings"], enc["shape"])
    res["bytes"] = sum(len(s[0]) for s in enc["strings"])

  res["codec_first"], res["codec_seconds"] = _timed(codec, args.repeats)
  from train_throughput import torch_train_step  # pylint: disable=import-outside-toplevel  (benchmarks/)
  res["step_first"], res["step_seconds"] = _timed(torch_train_step(net, crops), args.steps)
  return res


# --- ours (runs in the jaxsemic venv) ----------------------------------------------------------------------------

def ours(args, weights: str, inputs: str) -> dict:
  import jax
  from jaxsemic.codec import api
  from jaxsemic.codec.model_io import CodecModel, abstract_params
  from jaxsemic.training.step import resolve_microbatches
  from jaxsemic.zoo import compressai_import as cimport
  with np.load(weights) as z:
    state = {k: z[k] for k in z.files}
  cfg = cimport.infer_config(ARCH, state)
  params = cimport.convert(state, cfg, abstract_params(cfg))
  model = CodecModel.from_params(params, cfg)
  with np.load(inputs) as z:
    image, crops = z["image"], z["batch"]
  res = {"jax": jax.__version__, "devices": jax.device_count()}

  def codec():
    data, _ = api.compress(model, image)
    api.decompress(model, data)
    res["bytes"] = len(data)

  res["codec_first"], res["codec_seconds"] = _timed(codec, args.repeats)
  from train_throughput import our_step  # pylint: disable=import-outside-toplevel  (benchmarks/)
  res["microbatches"] = resolve_microbatches(0, crops.shape[0], crops.shape[1], jax.default_backend())
  step, state = our_step(params, cfg, microbatches=res["microbatches"])  # the trainer's auto microbatches
  holder = {"state": state}
  batch = {"image": jax.numpy.asarray(crops)}
  rng = jax.random.PRNGKey(0)

  def one():
    holder["state"], metrics = step(holder["state"], batch, rng)
    jax.block_until_ready(metrics["loss"])

  res["step_first"], res["step_seconds"] = _timed(one, args.steps)
  return res


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--compressai-python", default="/work/venv-compressai/bin/python")
  parser.add_argument("--N", type=int, default=128)
  parser.add_argument("--M", type=int, default=192)
  parser.add_argument("--repeats", type=int, default=3, help="timed codec runs after the warm-up")
  parser.add_argument("--steps", type=int, default=3, help="timed training steps after the warm-up")
  reference_side.add_options(parser)
  args = parser.parse_args()
  pages = reference_side.our_pages(args)
  if args.reference:
    reference_side.serve(reference(args), {})
    return 0
  extra = ["--N", str(args.N), "--M", str(args.M), "--repeats", str(args.repeats), "--steps", str(args.steps)]
  inputs = {"image": test_image(), "batch": train_batch()}
  sides = reference_side.malloc_settings(args)
  with contextlib.ExitStack() as stack:
    refs = [stack.enter_context(reference_side.Reference(args.compressai_python, __file__, inputs, extra, huge))
            for _, huge in sides]
    for ref in refs:
      ref.close()  # each has measured everything before replying: our side runs alone, as before
    mine = ours(args, refs[0].weights, refs[0].inputs)
  load = os.getloadavg()[0]
  print(f"{ARCH} N={args.N} M={args.M}; CPU {cpu_model()}, {os.cpu_count()} cores, load average {load:.1f}; "
        f"our step in {mine['microbatches']} microbatch(es) (the trainer's CPU auto), ours with "
        f"{pages}")
  for (label, _), ref in zip(sides, refs):
    theirs = ref.info
    print(f"\n{'':34}{'ours':>10}{label:>30}{'ours/theirs':>13}")
    rows = [("compress+decompress 768x512 (s)", mine["codec_seconds"], theirs["codec_seconds"], "<= 0.7"),
            ("training step b8 256^2 (s)", mine["step_seconds"], theirs["step_seconds"], ""),
            ("training throughput (img/s)", 8 / mine["step_seconds"], 8 / theirs["step_seconds"], ">= 1.3")]
    for name, a, b, target in rows:
      print(f"{name:34}{a:10.3f}{b:30.3f}{a / b:13.2f}  {('target ' + target) if target else ''}")
    print(f"{'first call incl. compile: codec (s)':34}{mine['codec_first']:10.2f}{theirs['codec_first']:30.2f}")
    print(f"{'first call incl. compile: step (s)':34}{mine['step_first']:10.2f}{theirs['step_first']:30.2f}")
    print(f"{'bytes of the 768x512 image':34}{mine['bytes']:10d}{theirs['bytes']:30d}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
