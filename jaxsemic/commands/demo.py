"""`jaxsemic demo`: the shipped models on a bundled photo, beside JPEG at the same file size."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from jaxsemic.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--image", help="image to code (default: scikit-image's astronaut, 512x512)")
  parser.add_argument("--caption", help="caption for the text-guided models (default: the bundled photo's "
                      "caption; the empty caption for --image)")
  parser.add_argument("--quality", type=int, nargs="+", help="rate points to run (default: all shipped, 1 = "
                      "smallest files)")
  parser.add_argument("--out", default="jaxsemic_demo", help="folder for the .jsc files, reconstructions and "
                      "the same-size JPEGs (default: %(default)s)")
  parser.add_argument("--force", action="store_true", help="overwrite files already in --out")
  parser.add_argument("--json", action="store_true", help="print one JSON object per line instead of a table")
  parser.epilog = "example: jaxsemic demo --image photo.png --caption 'a red boat on a lake' --quality 2"


def jpeg_same_size(image: np.ndarray, max_bytes: int) -> tuple[bytes, int] | None:
  """The highest-quality Pillow JPEG (quality 1..95) not larger than max_bytes, by bisection; None if none."""
  from jaxsemic.eval.codecs import get_codec
  jpeg = get_codec("jpeg")
  lo, hi, best = 1, 95, None
  while lo <= hi:
    q = (lo + hi) // 2
    data = jpeg.encode(image, q)
    if len(data) <= max_bytes:
      best, lo = (data, q), q + 1
    else:
      hi = q - 1
  return best


def _default_image() -> tuple[str, str]:
  from jaxsemic.data import builtin
  return os.path.join(builtin.photo_dir(), "astronaut.png"), builtin.captions()["astronaut.png"][0]


def run(args: argparse.Namespace) -> int:
  from jaxsemic import shipped
  from jaxsemic.codec import api, image_io, model_io
  from jaxsemic.eval.codecs import get_codec
  from jaxsemic.training.evaluate import psnr
  from jaxsemic.text_lookup import embed_caption

  path, caption = (args.image, args.caption or "") if args.image else _default_image()
  if args.caption is not None:
    caption = args.caption
  image = image_io.read_image(path, quiet=args.json)
  names = ([shipped.name_for_quality(q) for q in args.quality] if args.quality
           else [n for n in shipped.available() if n in shipped.SELIC_NAMES])
  if not names:
    raise UserError("no shipped models in this installation (jaxsemic/shipped is empty)")
  stem = os.path.splitext(os.path.basename(path))[0]
  for name in names if os.path.isdir(args.out) else ():  # refuse before writing anything
    for suffix in (".jsc", ".png", "_jpeg.jpg"):
      image_io.check_output(os.path.join(args.out, f"{stem}_{name}{suffix}"), args.force)
  os.makedirs(args.out, exist_ok=True)
  h, w = image.shape[:2]
  if not args.json:
    print(f"{path} ({w}x{h}); caption: {caption!r}", file=sys.stderr)
    print(f"{'model':<10} {'bytes':>7} {'bpp':>7} {'PSNR':>7} | {'JPEG q':>6} {'bytes':>7} {'bpp':>7} {'PSNR':>7}"
          f" | {'dB gain':>7} {'seconds':>7}")
  for name in names:
    model = model_io.load_model(shipped.model_dir(name))
    t0 = time.perf_counter()
    text = embed_caption(caption, model) if model.text_dim else None
    data, _ = api.compress(model, image, text)
    restored = api.decompress(model, data)
    seconds = time.perf_counter() - t0
    image_io.write_atomic(os.path.join(args.out, f"{stem}_{name}.jsc"), data, args.force)
    image_io.write_png(os.path.join(args.out, f"{stem}_{name}.png"), restored, args.force)
    row = {"model": name, "bytes": len(data), "bpp": 8.0 * len(data) / (h * w), "psnr": psnr(image, restored),
           "seconds": seconds}
    jpeg = jpeg_same_size(image, len(data))
    if jpeg is not None:
      jdata, q = jpeg
      jrestored = get_codec("jpeg").decode(jdata, image.shape[:2])
      image_io.write_atomic(os.path.join(args.out, f"{stem}_{name}_jpeg.jpg"), jdata, args.force)
      row.update(jpeg_quality=q, jpeg_bytes=len(jdata), jpeg_bpp=8.0 * len(jdata) / (h * w),
                 jpeg_psnr=psnr(image, jrestored))
    if args.json:
      print(json.dumps(row))
    elif jpeg is None:
      print(f"{name:<10} {row['bytes']:>7} {row['bpp']:>7.4f} {row['psnr']:>7.2f} | JPEG cannot go this small"
            f" {seconds:>7.2f}")
    else:
      print(f"{name:<10} {row['bytes']:>7} {row['bpp']:>7.4f} {row['psnr']:>7.2f} | {row['jpeg_quality']:>6} "
            f"{row['jpeg_bytes']:>7} {row['jpeg_bpp']:>7.4f} {row['jpeg_psnr']:>7.2f} | "
            f"{row['psnr'] - row['jpeg_psnr']:>+7.2f} {seconds:>7.2f}")
  if not args.json:
    print(f"reconstructions, .jsc files and the same-size JPEGs are in {args.out}/", file=sys.stderr)
  return 0
