"""Encode / decode seconds of SELIC models on a 768x512 image, per stage, beside Pillow's JPEG and WebP.

    python benchmarks/codec_speed.py [--models random selic-q2] [--image PATH] [--repeats 5] [--json OUT]

One command prints the whole table: the CPU model, the load average before and after, and for each model
(`random`: the default config N=128, M=320, 10 slices, randomly initialised, so ~10 bpp; `selic-q2`: the shipped
trained model at a realistic rate; or a model directory) the first compress + decompress (which compiles), then
encode and decode interleaved with Pillow's JPEG q75 / WebP q75 on the same image (A, B, A, B...): min and
median wall seconds and the min process CPU seconds (user + sys of both cores, less sensitive to other load
than wall time). The stage breakdown is one more run that waits after every stage (g_a + h_a, h_s, the ChARM
slice transforms, the range coder, g_s), so its sum exceeds the pipelined total. Last, the range coder's
symbols per second on 2 M symbols of the Gaussian tables. The library's programs are compiled cold (the CLI's
on-disk caches are not enabled here).

Before / after: run this file from an export of the older revision, alternating with this tree, e.g.
`git archive REV | tar -x -C /tmp/rev && cp benchmarks/codec_speed.py /tmp/rev/benchmarks/ && cd /tmp/rev &&
PYTHONPATH=/tmp/rev python benchmarks/codec_speed.py` (revisions before the stage timings print no breakdown).
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import statistics
import time

import numpy as np

from machine import cpu_model, load as _load, huge_pages


def load() -> str:
  return "load average " + _load()


def timed(fn) -> tuple[float, float, object]:
  """(wall seconds, process CPU seconds, result) of one call."""
  t0, c0 = time.perf_counter(), time.process_time()
  out = fn()
  return time.perf_counter() - t0, time.process_time() - c0, out


def interleaved(fns: dict, repeats: int) -> dict[str, dict[str, float]]:
  """Runs every fn once per round, `repeats` rounds; min / median wall and min CPU seconds of each."""
  walls = {k: [] for k in fns}
  cpus = {k: [] for k in fns}
  for _ in range(repeats):
    for k, fn in fns.items():
      w, c, _ = timed(fn)
      walls[k].append(w)
      cpus[k].append(c)
  return {k: {"min": min(walls[k]), "median": statistics.median(walls[k]), "cpu_min": min(cpus[k])} for k in fns}


def load_codec_model(name: str):
  """`random` (default config, random init), a shipped model name, or a model directory."""
  from jaxsemic.codec.model_io import CodecModel, init_params, load_model
  from jaxsemic.models import ModelConfig, default_model_config
  if name == "random":
    cfg = ModelConfig.from_any(default_model_config())
    return CodecModel.from_params(init_params(cfg), cfg)
  if os.path.isdir(name):
    return load_model(name)
  import jaxsemic
  return jaxsemic.pretrained(name)


def stage_seconds(model, img: np.ndarray, text, data: bytes, repeats: int) -> dict[str, dict[str, float]]:
  """Per-stage (wall, CPU) seconds, each the min over `repeats`, of the family's compress and decompress (if
  they take `timings`: not before this benchmark's commit)."""
  from jaxsemic.codec import api, bitstream
  fam = model.family
  if "timings" not in inspect.signature(fam.compress).parameters:
    return {}
  x = api.pad_images(img[None], fam.pad).astype(np.float32) / 255.0
  t = None if text is None else np.asarray(text, np.float32)[None]
  bs = bitstream.unpack(data)
  hp, wp = x.shape[1:3]
  out = {"encode": {}, "decode": {}}
  for _ in range(repeats):
    enc, dec = {}, {}
    fam.compress(model, x, t, None, timings=enc)
    np.asarray(fam.decompress(model, bs.streams, hp, wp, timings=dec)[0])
    for side, d in (("encode", enc), ("decode", dec)):
      for k, (wall, cpu) in d.items():
        best = out[side].get(k, (np.inf, np.inf))
        out[side][k] = (min(wall, best[0]), min(cpu, best[1]))
  return out


def bench_model(name: str, img: np.ndarray, repeats: int, pil: dict) -> dict:
  """First call, interleaved encode / decode / Pillow, stage breakdown of one model."""
  from jaxsemic.codec import api
  model = load_codec_model(name)
  text = np.zeros(model.text_dim, np.float32) if model.text_dim else None
  first_enc, _, (data, info) = timed(lambda: api.compress(model, img, text))
  first_dec, _, _ = timed(lambda: api.decompress(model, data))
  fns = {"encode": lambda: api.compress(model, img, text), "decode": lambda: api.decompress(model, data), **pil}
  res = {"model": name, "config": dict(N=model.cfg.N, M=model.cfg.M, slices=model.cfg.num_slices),
         "params": model.num_params(), "bytes": len(data), "bpp": info["bpp"],
         "estimated_bpp": info["estimated_bpp"], "first_encode": first_enc, "first_decode": first_dec,
         "load_before": os.getloadavg()[0], "times": interleaved(fns, repeats),
         "stages": stage_seconds(model, img, text, data, max(1, repeats // 2))}
  res["load_after"] = os.getloadavg()[0]
  return res


def print_model(r: dict) -> None:
  c = r["config"]
  print(f"\n== {r['model']}: N={c['N']} M={c['M']} slices={c['slices']}, {r['params']:,} parameters; "
        f"{r['bytes']:,} bytes, {r['bpp']:.4f} bpp (estimated {r['estimated_bpp']:.4f}); "
        f"load {r['load_before']:.2f} -> {r['load_after']:.2f}")
  print(f"first call (compiles): encode {r['first_encode']:.2f} s, decode {r['first_decode']:.2f} s")
  print(f"{'':14s} {'min s':>8s} {'median s':>9s} {'CPU s':>8s}")
  for k, t in r["times"].items():
    print(f"{k:14s} {t['min']:8.3f} {t['median']:9.3f} {t['cpu_min']:8.3f}")
  enc, dec = r["times"]["encode"]["min"], r["times"]["decode"]["min"]
  print(f"ours / JPEG q75: encode {enc / r['times']['JPEG q75 enc']['min']:.0f}x, decode "
        f"{dec / r['times']['JPEG q75 dec']['min']:.0f}x")
  for side, stages in r["stages"].items():
    total = sum(wall for wall, _ in stages.values())
    print(f"{side} stages, wall s (CPU s), waiting after each (sum {total:.3f} s): "
          + ", ".join(f"{k} {wall:.3f} ({cpu:.3f})" for k, (wall, cpu) in stages.items()))


def coder_speed(n: int = 2_000_000) -> tuple[float, float, float]:
  """Range coder (grouped Gaussian tables): encode and decode M symbols/s, bits per symbol."""
  from jaxsemic.entropy import coder, tables
  from jaxsemic.entropy.gaussian import default_scale_table
  t = tables.gaussian_tables(default_scale_table())
  rng = np.random.default_rng(0)
  idx = rng.integers(0, len(t.length), n)
  vals = np.round(rng.normal(size=n) * default_scale_table()[idx] * 0.5).astype(np.int32)
  tc = coder.TableCoder(t)
  e = coder.new_encoder()
  t_enc, _, _ = timed(lambda: tc.encode(e, vals, idx))
  stream = coder.finish(e)
  t_dec, _, _ = timed(lambda: tc.decode(coder.new_decoder(stream), idx))
  return n / t_enc / 1e6, n / t_dec / 1e6, 8 * len(stream) / n


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", nargs="+", default=["random", "selic-q2"],
                      help="'random' (default config, random init), shipped names or model directories")
  parser.add_argument("--image", help="image path (default: scikit-image astronaut resized to 768x512)")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", help="also write the results here")
  args = parser.parse_args()
  malloc = huge_pages()  # as the trainer runs (jaxsemic/runtime.py)

  import jax
  from PIL import Image

  from jaxsemic.codec import api
  print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; jax {jax.__version__}; {malloc}; {load()}")
  if args.image:
    img = api.read_image(args.image)
  else:
    from skimage import data
    img = np.asarray(Image.fromarray(data.astronaut()).resize((768, 512), Image.BICUBIC))

  def pil_encode(fmt):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, quality=75)
    return buf.getvalue()

  jpeg, webp = pil_encode("JPEG"), pil_encode("WEBP")
  pil = {"JPEG q75 enc": lambda: pil_encode("JPEG"), "JPEG q75 dec": lambda: np.asarray(Image.open(io.BytesIO(jpeg))),
         "WebP q75 enc": lambda: pil_encode("WEBP"), "WebP q75 dec": lambda: np.asarray(Image.open(io.BytesIO(webp)))}
  print(f"image: {img.shape[1]}x{img.shape[0]}; JPEG q75 {len(jpeg):,} bytes, WebP q75 {len(webp):,} bytes")
  results = []
  for name in args.models:
    results.append(bench_model(name, img, args.repeats, pil))
    print_model(results[-1])
  enc, dec, bits = coder_speed()
  print(f"\nrange coder (grouped Gaussian tables, 2,000,000 symbols): encode {enc:.1f} M symbols/s, "
        f"decode {dec:.1f} M symbols/s, {bits:.3f} bits/symbol")
  print(f"CPU: {cpu_model()}; {load()}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"cpu": cpu_model(), "models": results, "coder_msym_s": [enc, dec]}, f, indent=1)


if __name__ == "__main__":
  main()
