"""`jaxsemic compress` and `jaxsemic decompress`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from jaxsemic.errors import UserError


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
  if name == "compress":
    parser.add_argument("input", help="image (PNG, JPEG, ...), or a folder of images (folder mode)")
    parser.add_argument("output", help=".jsc file to write, or the folder for the .jsc files (folder mode)")
    parser.add_argument("--model", help="model directory (jaxsemic export / init / import-compressai) or a "
                        "shipped model name; default: the shipped SELIC model of --quality")
    parser.add_argument("--quality", type=int, default=2, help="rate point of the shipped default model, "
                        "1 (smallest files) to 3 (default: %(default)s); ignored with --model")
    parser.add_argument("--caption", help="text describing the image (text-guided models)")
    parser.add_argument("--captions", help="jsonl file with {'file', 'caption' or 'captions'} lines")
    parser.add_argument("--blip", help="BLIP checkpoint directory: caption the image with it")
    parser.add_argument("--text-encoder", help="HF directory or hub name of the text encoder "
                        "(default: the model's, else all-MiniLM-L6-v2)")
    parser.add_argument("--drop-alpha", action="store_true", help="discard a non-opaque alpha channel")
    parser.add_argument("--tile", type=int, default=None, help="code the image in tiles of this many pixels "
                        "(a multiple of 64; 0: never; default: tiles of 1024 above 2048x2048 pixels, which "
                        "bounds the memory of large photos)")
  else:
    parser.add_argument("input", help=".jsc file, or a folder of .jsc files (folder mode)")
    parser.add_argument("output", help="PNG file to write, or the folder for the PNGs (folder mode)")
    parser.add_argument("--model", help="model directory (default: $JAXSEMIC_MODEL, else the shipped model "
                        "that wrote the file)")
    parser.add_argument("--max-pixels", type=int, default=None, help="refuse files declaring a larger image "
                        "(default: 64000000, enough for 50 MP photos)")
  parser.add_argument("--force", action="store_true", help="overwrite an existing output")
  parser.add_argument("--json", action="store_true", help="print one JSON object with the results")


def _model(path: str | None, quality: int | None = None, data: bytes | None = None):
  """--model (a directory or a shipped name), else $JAXSEMIC_MODEL, else a shipped model."""
  from jaxsemic import shipped
  from jaxsemic.codec.model_io import load_model
  path = path or os.environ.get("JAXSEMIC_MODEL")
  if path:
    return load_model(shipped.resolve(path))
  if quality is not None:
    return load_model(shipped.model_dir(shipped.name_for_quality(quality)))
  from jaxsemic.codec import bitstream
  model_id = bitstream.unpack(data).model_id
  return load_model(shipped.dir_for_model_id(model_id, "this .jsc", "--model MODEL_DIR"))


def _caption_for(args, image_path: str, image) -> str | None:
  """--caption, else the captions file, else BLIP, else None."""
  from jaxsemic import text_lookup
  if args.caption is not None:
    return args.caption
  if args.captions:
    return text_lookup.caption_from_file(args.captions, image_path)
  if args.blip:
    return text_lookup.caption_with_blip(args.blip, image)
  return None


def _compress_file(args, model, src: str, dst: str) -> tuple[dict, object, str | None]:
  """Compresses one image file to `dst`; returns (info, model, note for the user or None)."""
  from jaxsemic.codec import api, image_io
  image = image_io.read_image(src, drop_alpha=args.drop_alpha, quiet=args.json)
  text, note = None, None
  if model.text_dim:
    caption = _caption_for(args, src, image)
    if caption is None:
      caption, note = "", ("no caption given (--caption, --captions or --blip): coding with the empty "
                           "caption, which text-guided models see in training (caption dropout)")
    elif args.blip and not args.json:
      print(f"caption: {caption}", file=sys.stderr)
    from jaxsemic.text_lookup import embed_caption
    text = embed_caption(caption, model, args.text_encoder)
  data, info = api.compress(model, image, text, tile=args.tile)
  image_io.write_atomic(dst, data, args.force)
  return info, model, note


def _decompress_file(args, model, src: str, dst: str) -> tuple[dict, object, None]:
  """Decodes one .jsc file to the PNG `dst` (model None or another id: the shipped model that wrote it);
  returns (info, the model used, None)."""
  from jaxsemic.codec import api, bitstream, image_io
  if not os.path.isfile(src):
    raise UserError(f"input not found: {src}")
  with open(src, "rb") as f:
    data = f.read()
  if model is None or (not args.model and bitstream.unpack(data).model_id != model.model_id):
    model = _model(args.model, data=data)
  image = api.decompress(model, data, max_pixels=api.MAX_PIXELS if args.max_pixels is None else args.max_pixels)
  image_io.write_png(dst, image, args.force)
  h, w = image.shape[:2]
  return {"bytes": len(data), "bpp": 8.0 * len(data) / (h * w), "height": h, "width": w}, model, None


def _folder_jobs(args) -> list[tuple[str, str]]:
  """(input, output) pairs of folder mode: every image (or .jsc) of the input folder, by name, into the output folder."""
  from jaxsemic import io
  if io.is_remote(args.input) or io.is_remote(args.output):
    raise UserError("folder mode reads and writes local folders only: give a local folder (single files may be gs://)")
  if os.path.exists(args.output) and not os.path.isdir(args.output):
    raise UserError(f"{args.output} is a file: folder mode writes into a folder")
  if args.command == "compress":
    names = [os.path.relpath(p, args.input) for p in io.image_files(args.input)]
    jobs = [(os.path.join(args.input, n), os.path.join(args.output, os.path.splitext(n)[0] + ".jsc")) for n in names]
  else:
    names = sorted(n for n in os.listdir(args.input) if n.endswith(".jsc"))
    jobs = [(os.path.join(args.input, n), os.path.join(args.output, n[:-4] + ".png")) for n in names]
  if not jobs:
    raise UserError(f"no {'images' if args.command == 'compress' else '.jsc files'} in {args.input}")
  if os.path.realpath(args.input) == os.path.realpath(args.output):
    raise UserError("the output folder is the input folder: give another one")
  if not args.force:  # refuse before writing anything
    for _, dst in jobs:
      if os.path.exists(dst):
        raise UserError(f"{dst} exists; pass --force to overwrite it")
  return jobs


def _run_folder(args) -> int:
  """Folder mode: one model load (and one compile per image size), a progress bar, a summary line."""
  from tqdm import tqdm
  jobs = _folder_jobs(args)
  model = _model(args.model, args.quality) if args.command == "compress" else (
      _model(args.model) if args.model or os.environ.get("JAXSEMIC_MODEL") else None)
  work = _compress_file if args.command == "compress" else _decompress_file
  t0, total_bytes, pixels, noted = time.perf_counter(), 0, 0, False
  for src, dst in tqdm(jobs, desc=args.command, unit="file", disable=args.json, file=sys.stderr):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    info, model, note = work(args, model, src, dst)  # the model is reused for the next file
    if note and not noted and not args.json:
      print(f"note: {note}", file=sys.stderr)
      noted = True
    total_bytes += info["bytes"]
    pixels += info["height"] * info["width"]
  summary = {"files": len(jobs), "bytes": total_bytes, "bpp": 8.0 * total_bytes / pixels,
             "seconds": time.perf_counter() - t0, "output": args.output}
  if args.json:
    print(json.dumps(summary))
  else:
    print(f"{args.output}: {summary['files']} files, {total_bytes} bytes, {summary['bpp']:.4f} bpp on average, "
          f"{summary['seconds']:.1f} s")
  return 0


def run(args: argparse.Namespace) -> int:
  from jaxsemic.codec import image_io
  if os.path.isdir(args.input):
    return _run_folder(args)
  image_io.check_output(args.output, args.force, inputs=(args.input,))
  if args.command == "decompress" and not args.output.lower().endswith(".png"):
    raise UserError(f"decompress writes PNG images: give an output name ending in .png, not {args.output}")
  t0 = time.perf_counter()
  if args.command == "compress":
    info, _, note = _compress_file(args, _model(args.model, args.quality), args.input, args.output)
    if note and not args.json:
      print(f"note: {note}", file=sys.stderr)
  else:
    info, _, _ = _decompress_file(args, None, args.input, args.output)
  info["seconds"] = time.perf_counter() - t0
  if args.json:
    print(json.dumps(info))
  else:
    print(f"{args.output}: {info['width']}x{info['height']}, {info['bytes']} bytes, {info['bpp']:.4f} bpp"
          + (f" (estimated {info['estimated_bpp']:.4f})" if "estimated_bpp" in info else "")
          + f", {info['seconds']:.2f} s")
  return 0
