"""cheng2020-attn decompress: our wavefront (.jsc versions 3 and 2) and raster (v1) decoders against CompressAI's.

  . .venv/bin/activate
  python benchmarks/context_decode.py --compressai-python /work/venv-compressai/bin/python

One command prints the whole table. Same weights on both sides: CompressAI's cheng2020-attn (N = M = 192, its
quality-6 size) with the seeded, perturbed init of `tools/compressai_fixtures.build`, imported into jaxsemic.
Image: kodim23 from ../shared/data/kodak if present, else a 768x512 crop of scikit-image's astronaut.
CompressAI runs in its own venv (numpy<2) as a subprocess of this file (`--reference`) that stays alive and
decodes on request, so the sides take turns (CompressAI, wavefront v3, v2, raster, CompressAI, ...) with warm
caches. Version 3 evaluates the entropy parameters as matrix products, version 2 as 1x1 convs (same steps).
Each side's first decompress (ours: incl. XLA compilation) is reported apart; then min and median of
--repeats, and g_s alone on each side (ours: the jitted synthesis, theirs: `net.g_s`; the same 480 GFLOP at
N = 192, 768x512), so that decompress - g_s shows the context decoding. Target (issue 16):
wavefront decompress <= 0.25x CompressAI's. The CPU model and the load average are printed with the result; on a
shared machine the absolute numbers move, the ratios less.
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = "cheng2020-attn"
KODIM23 = os.path.join(REPO, "..", "shared", "data", "kodak", "kodim23.png")




def load_image() -> tuple[np.ndarray, str]:
  """(uint8 [H,W,3], its name): kodim23 if the shared Kodak copy is there, else a generated 768x512 image."""
  if os.path.exists(KODIM23):
    from PIL import Image
    return np.asarray(Image.open(KODIM23).convert("RGB")), "kodim23"
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from vs_compressai import test_image
  return test_image(), "astronaut 768x512 (kodim23 not found)"


def _seconds(fn) -> float:
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


# --- CompressAI (runs in the CompressAI venv) ------------------------------------------------------------------

def reference(args) -> None:
  """Writes the weights, compresses, then answers 'decompress' / 'g_s' requests with JSON timings."""
  import torch
  net = reference_side.build(ARCH, args.weights, N=args.N).eval()
  net.update(force=True)
  with np.load(args.inputs) as z:
    image = z["image"]
  x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
  h, w = x.shape[2:]
  xp = torch.nn.functional.pad(x, (0, -w % 64, 0, -h % 64), mode="replicate")
  with torch.no_grad():
    enc = net.compress(xp)
    out = {}

    def decompress():
      out["x_hat"] = net.decompress(enc["strings"], enc["shape"])["x_hat"]

    first = _seconds(decompress)
    y_hat = torch.randn(1, args.N, xp.shape[2] // 16, xp.shape[3] // 16)
    x_hat = (out["x_hat"][0, :, :h, :w].clamp(0, 1).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    np.save(args.inputs + ".theirs.npy", x_hat)
    reference_side.serve({**reference_side.torch_info(), "first": first,
                          "bytes": sum(len(s[0]) for s in enc["strings"])},
                         {"decompress": lambda _: {"seconds": _seconds(decompress)},
                          "g_s": lambda _: {"seconds": _seconds(lambda: net.g_s(y_hat).clamp_(0, 1))}})


# --- ours (runs in the jaxsemic venv) ----------------------------------------------------------------------------

def ours(weights: str, image: np.ndarray):
  """(model, {"wavefront": version-3 .jsc, "v2": version-2, "raster": version-1}, first-call seconds) for the
  imported weights."""
  import dataclasses
  from jaxsemic.codec import api, bitstream
  from jaxsemic.codec.model_io import CodecModel, abstract_params
  from jaxsemic.zoo import codec as zoo_codec
  from jaxsemic.zoo import compressai_import as cimport
  with np.load(weights) as z:
    state = {k: z[k] for k in z.files}
  cfg = cimport.infer_config(ARCH, state)
  model = CodecModel.from_params(cimport.convert(state, cfg, abstract_params(cfg)), cfg)
  data, _ = api.compress(model, image)
  x = api.pad_images(image[None]).astype(np.float32) / 255.0
  older = {"raster": (1, zoo_codec.context_streams(model, x, "serial")[0]),  # what version 1 wrote: raster order
           "v2": (2, zoo_codec.context_streams(model, x, "wavefront", entropy_rows=False)[0])}
  files = {"wavefront": data, **{k: bitstream.pack(dataclasses.replace(bitstream.unpack(data), streams=tuple(s),
                                                                         version=v)) for k, (v, s) in older.items()}}
  first = {k: _seconds(lambda f=f: api.decompress(model, f)) for k, f in files.items()}
  return model, files, first


def same_program_raster_is_identical(model, image: np.ndarray, data: bytes) -> bool:
  """Whether raster order through the wavefront's program (`schedule(..., "raster")`) gives the same x_hat."""
  from jaxsemic.codec import api, bitstream
  from jaxsemic.zoo import codec as zoo_codec
  x = api.pad_images(image[None]).astype(np.float32) / 255.0
  streams, _ = zoo_codec.context_streams(model, x, "raster")
  x_r, _ = zoo_codec.context_decode(model, streams, *x.shape[1:3], "raster")
  x_w, _ = zoo_codec.context_decode(model, bitstream.unpack(data).streams, *x.shape[1:3], "wavefront")
  return bool(np.array_equal(np.asarray(x_r), np.asarray(x_w)))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--compressai-python", default="/work/venv-compressai/bin/python")
  parser.add_argument("--N", type=int, default=192)
  parser.add_argument("--repeats", type=int, default=3, help="timed rounds after the first calls")
  reference_side.add_options(parser)
  args = parser.parse_args()
  pages = reference_side.our_pages(args)
  if args.reference:
    reference(args)
    return 0
  import jax.numpy as jnp
  from jaxsemic.codec import api
  from jaxsemic.family import synthesis
  image, image_name = load_image()
  sides = reference_side.malloc_settings(args)
  with contextlib.ExitStack() as stack:
    refs = [stack.enter_context(reference_side.Reference(args.compressai_python, __file__, {"image": image},
                                                         ["--N", str(args.N)], huge)) for _, huge in sides]
    theirs_img = np.load(refs[0].inputs + ".theirs.npy")
    model, files, first = ours(refs[0].weights, image)
    data = files["wavefront"]
    imgs = {k: api.decompress(model, f) for k, f in files.items()}
    img_w = imgs["wavefront"]
    shape = (1, -(-image.shape[0] // 64) * 4, -(-image.shape[1] // 64) * 4, args.N)  # the padded latents
    y = jnp.asarray(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    synthesis(model.module, model.params, y).block_until_ready()
    labels = [label for label, _ in sides]
    times = {k: [] for k in (*labels, *files, *(f"{k} g_s" for k in labels), "ours g_s")}
    loads = []
    for _ in range(args.repeats):
      for label, ref in zip(labels, refs):
        times[label].append(ref.ask("decompress")["seconds"])
      for key, f in files.items():
        times[key].append(_seconds(lambda f=f: api.decompress(model, f)))
      for label, ref in zip(labels, refs):
        times[f"{label} g_s"].append(ref.ask("g_s")["seconds"])
      times["ours g_s"].append(_seconds(lambda: synthesis(model.module, model.params, y).block_until_ready()))
      loads.append(os.getloadavg()[0])
  identical = same_program_raster_is_identical(model, image, data)
  theirs = refs[0].info
  print(f"{ARCH} N=M={args.N}, {image_name} {image.shape[1]}x{image.shape[0]}; CPU {cpu_model()}, "
        f"{os.cpu_count()} cores; load average {min(loads):.1f}-{max(loads):.1f} during the rounds "
        f"(1-min: {os.getloadavg()[0]:.1f} now); torch {theirs['torch']} ({theirs['threads']} threads); ours with "
        f"{pages}")
  print(f"bytes: ours {len(data)} (.jsc v3), {len(files['v2'])} (v2), {len(files['raster'])} (v1); CompressAI "
        f"{theirs['bytes']}. Decoded uint8 images, max |diff| of v3's: vs v2 "
        f"{np.abs(img_w.astype(int) - imgs['v2']).max()}, vs v1 raster "
        f"{np.abs(img_w.astype(int) - imgs['raster']).max()} (other float programs), vs "
        f"CompressAI {np.abs(img_w.astype(int) - theirs_img).max()}; raster order through the wavefront's program: "
        f"x_hat bit-identical {identical}")
  med = {k: statistics.median(v) for k, v in times.items()}
  print(f"{'decompress (s)':30}{'first call':>11}{'min':>9}{'median':>9}" +
        "".join(f"{'/ ' + label:>30}" for label in labels))
  rows = [(label, ref.info["first"], label) for label, ref in zip(labels, refs)]
  rows += [("ours, wavefront (.jsc v3)", first["wavefront"], "wavefront"),
           ("ours, wavefront (.jsc v2)", first["v2"], "v2"),
           ("ours, raster (.jsc v1)", first["raster"], "raster")]
  for name, first_s, key in rows:
    print(f"{name:30}{first_s:11.2f}{min(times[key]):9.2f}{med[key]:9.2f}" +
          "".join(f"{med[key] / med[label]:30.3f}" for label in labels))
  for label in [*labels, "ours"]:
    print(f"{'  of which g_s, ' + label:41}{min(times[label + ' g_s']):9.2f}{med[label + ' g_s']:9.2f}")
  for label in labels:
    rest = {k: med[k] - med[g] for k, g in ((label, f"{label} g_s"), ("wavefront", "ours g_s"),
                                            ("raster", "ours g_s"))}
    print(f"decompress - g_s (medians): {label} {rest[label]:.2f} s, wavefront {rest['wavefront']:.2f} s "
          f"({rest['wavefront'] / rest[label]:.3f}x), raster {rest['raster']:.2f} s "
          f"({rest['raster'] / rest[label]:.3f}x)")
  for label in labels:
    print(f"wavefront v3 / {label} = {med['wavefront'] / med[label]:.3f} (medians; mins "
          f"{min(times['wavefront']) / min(times[label]):.3f}); v2: {med['v2'] / med[label]:.3f} (target <= 0.25)")
  print(f"wavefront v3 / v2 = {med['wavefront'] / med['v2']:.3f}, wavefront v3 / raster = "
        f"{med['wavefront'] / med['raster']:.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
