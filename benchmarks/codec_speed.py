"""Encode / decode seconds of a SELIC model on a 768x512 image, and the range coder's symbols per second.

    python benchmarks/codec_speed.py [--model MODEL_DIR] [--image PATH] [--repeats 3]

Without --model, the default config (configs' N=128, M=320, 10 slices) is randomly initialised: speed does not
depend on training. The first call compiles; the timings are the best of the next `repeats` calls. Pillow's
JPEG and WebP on the same image are measured in the same run as a reference point (ratios printed).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np


def _best(fn, repeats):
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - t0)
  return min(times), out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", help="model directory (default: random init of the default config)")
  parser.add_argument("--image", help="image path (default: scikit-image astronaut resized to 768x512)")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()

  from PIL import Image

  from jaxsemic.codec import api
  from jaxsemic.codec.model_io import CodecModel, init_params, load_model
  from jaxsemic.entropy import coder, tables
  from jaxsemic.entropy.gaussian import default_scale_table
  from jaxsemic.models import ModelConfig, default_model_config

  if args.image:
    img = api.read_image(args.image)
  else:
    from skimage import data
    img = np.asarray(Image.fromarray(data.astronaut()).resize((768, 512), Image.BICUBIC))
  if args.model:
    model = load_model(args.model)
  else:
    cfg = ModelConfig.from_any(default_model_config())
    model = CodecModel.from_params(init_params(cfg), cfg)
  h, w = img.shape[:2]
  text = np.zeros(model.text_dim, np.float32) if model.text_dim else None
  t0 = time.perf_counter()
  data, _ = api.compress(model, img, text)
  api.decompress(model, data)
  first = time.perf_counter() - t0
  enc, (data, info) = _best(lambda: api.compress(model, img, text), args.repeats)
  dec, _ = _best(lambda: api.decompress(model, data), args.repeats)

  def pil(fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kw)
    return buf.getvalue()

  jpeg_enc, jpeg = _best(lambda: pil("JPEG", quality=75), args.repeats)
  jpeg_dec, _ = _best(lambda: np.asarray(Image.open(io.BytesIO(jpeg))), args.repeats)
  webp_enc, _ = _best(lambda: pil("WEBP", quality=75), args.repeats)

  t = tables.gaussian_tables(default_scale_table())
  rng = np.random.default_rng(0)
  n = 2_000_000
  idx = rng.integers(0, len(t.length), n)
  vals = np.round(rng.normal(size=n) * default_scale_table()[idx] * 0.5).astype(np.int32)
  tc = coder.TableCoder(t)
  e = coder.new_encoder()
  t_enc, _ = _best(lambda: tc.encode(coder.new_encoder(), vals, idx), 1)
  tc.encode(e, vals, idx)
  stream = coder.finish(e)
  t_dec, _ = _best(lambda: tc.decode(coder.new_decoder(stream), idx), 1)

  n_params = model.num_params()
  print(f"model: {model.cfg.name} N={model.cfg.N} M={model.cfg.M} slices={model.cfg.num_slices}, "
        f"{n_params:,} parameters ({n_params * 4 / 1e6:.1f} MB float32)")
  print(f"image: {w}x{h}; {info['bpp']:.4f} bpp (estimated {info['estimated_bpp']:.4f})")
  print(f"first compress+decompress (includes compilation): {first:.2f} s")
  print(f"encode {enc:.3f} s   decode {dec:.3f} s   (best of {args.repeats})")
  print(f"Pillow JPEG q75 encode {jpeg_enc * 1e3:.1f} ms decode {jpeg_dec * 1e3:.1f} ms; WebP q75 encode "
        f"{webp_enc * 1e3:.1f} ms")
  print(f"ratio ours/JPEG: encode {enc / jpeg_enc:.0f}x, decode {dec / jpeg_dec:.0f}x")
  print(f"range coder (grouped Gaussian tables, {n:,} symbols): encode {n / t_enc / 1e6:.1f} M symbols/s, "
        f"decode {n / t_dec / 1e6:.1f} M symbols/s, {8 * len(stream) / n:.3f} bits/symbol")


if __name__ == "__main__":
  main()
