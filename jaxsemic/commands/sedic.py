"""`jaxsemic sedic encode | decode | info`: SEDIC `.sedic` files (Song et al.; jaxsemic/sedic, docs/sedic.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

from jaxsemic.errors import UserError

ACTIONS = ("encode", "decode", "info")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Declares the three actions and their arguments."""
  sub = parser.add_subparsers(dest="action", required=True, metavar="{encode,decode,info}")
  enc = sub.add_parser("encode", help="image + descriptions + masks -> .sedic")
  enc.add_argument("input", help="image (PNG, JPEG, ...)")
  enc.add_argument("--descriptions", required=True, help="descriptions: jsonl with a row for the image's file "
                   "name, or one JSON object ({'overall', 'objects': [{'name', 'details'}]})")
  enc.add_argument("--masks", nargs="+", default=[], metavar="MASK",
                   help="one mask image per object, in the objects' order (any size: resized to the image)")
  enc.add_argument("--reference", help="reference codec: a model directory or a shipped model name "
                   "(default: the shipped sedic-reference)")
  enc.add_argument("--objects", type=int, default=3, metavar="J", help="objects kept, 0..3 (default: %(default)s)")
  enc.add_argument("--l-d", type=int, default=30, help="words kept of each object's details (default: %(default)s)")
  enc.add_argument("--l-all", type=int, default=50, help="words kept of the overall text (default: %(default)s)")
  enc.add_argument("--drop-alpha", action="store_true", help="discard a non-opaque alpha channel")
  enc.add_argument("--out", required=True, help=".sedic file to write")
  dec = sub.add_parser("decode", help=".sedic -> PNG (Algorithm 1, or the reference image alone)")
  dec.add_argument("input", help=".sedic file")
  dec.add_argument("--out", required=True, help="PNG file to write")
  mode = dec.add_mutually_exclusive_group(required=True)
  mode.add_argument("--sd", metavar="DIR", help="Stable Diffusion folder (diffusers layout; needs --controlnet)")
  mode.add_argument("--reference-only", action="store_true", help="write the reference image alone (no diffusion)")
  mode.add_argument("--tiny-random", action="store_true", help="the whole decoder on tiny random models "
                    "(a smoke test: meaningless pixels, real stage timings)")
  dec.add_argument("--controlnet", metavar="DIR", help="latent ControlNet: diffusers folder, or an IRControlNet "
                   "checkpoint with --controlnet-format ldm")
  dec.add_argument("--controlnet-format", choices=("diffusers", "ldm"), default="diffusers")
  dec.add_argument("--reference", help="reference codec (default: the shipped model that wrote the file)")
  dec.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
  dec.add_argument("--object-steps", type=int, default=10, help="denoising steps per object (default: %(default)s)")
  dec.add_argument("--overall-steps", type=int, default=20, help="steps of the overall stage (default: %(default)s)")
  dec.add_argument("--eta", type=float, default=40.0, help="ORAG guidance step size, eq. 3 (default: %(default)s)")
  dec.add_argument("--guidance-method", default="exact",
                   choices=("exact", "no_controlnet_grad", "shared_controlnet", "one_pass"),
                   help="dE/dz of eq. 3: exact (the paper), or a faster approximation (docs/diffusion.md; "
                   "default: %(default)s)")
  dec.add_argument("--quiet", action="store_true", help="no progress bars")
  info = sub.add_parser("info", help="texts, J, word limits and bits per component of a .sedic file")
  info.add_argument("input", help=".sedic file")
  info.add_argument("--json", action="store_true", help="print one JSON object")
  for p in (enc, dec):
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results")


def _read(path: str) -> bytes:
  """The bytes of an input file; UserError if it is missing."""
  if not os.path.isfile(path):
    raise UserError(f"input not found: {path}")
  with open(path, "rb") as f:
    return f.read()


def _load_reference(path: str | None, model_id: bytes | None = None):
  """--reference (a directory or a shipped name); else the shipped model with `model_id`, else sedic-reference."""
  from jaxsemic import shipped
  from jaxsemic.codec.model_io import load_model
  if path:
    return load_model(shipped.resolve(path))
  if model_id is not None:
    return load_model(shipped.dir_for_model_id(model_id, "this .sedic's reference image", "--reference MODEL_DIR"))
  if shipped.SEDIC_REFERENCE not in shipped.available():
    raise UserError(f"no --reference given and the shipped {shipped.SEDIC_REFERENCE} model is not in this "
                    "installation: pass --reference MODEL_DIR (a cheng2020-attn, e.g. from `jaxsemic zoo get`)")
  return load_model(shipped.model_dir(shipped.SEDIC_REFERENCE))


def _rates(r: dict) -> str:
  """'total 0.0251 bpp (reference ..., text ..., masks ..., header ...)'."""
  b = r["bpp"]
  return (f"total {b['total']:.4f} bpp (reference {b['reference']:.4f}, text {b['text']:.4f}, "
          f"masks {b['masks']:.4f}, header {b['header']:.4f})")


def run_encode(args: argparse.Namespace) -> int:
  """Reads the inputs, encodes, writes the .sedic file atomically."""
  from jaxsemic.codec import image_io
  from jaxsemic.sedic import descriptions as D
  from jaxsemic.sedic import encoder, maskcode
  image_io.check_output(args.out, args.force, inputs=(args.input, *args.masks))
  for path in args.masks:
    if not os.path.isfile(path):
      raise UserError(f"mask file {path} does not exist")
  image = image_io.read_image(args.input, drop_alpha=args.drop_alpha, quiet=args.json)
  desc = D.SidecarDescriber(args.descriptions).describe(args.input)
  kept = D.limit_words(desc, args.objects, args.l_d, args.l_all).objects
  if len(args.masks) < len(kept):
    raise UserError(f"{len(kept)} objects kept (--objects {args.objects}) but {len(args.masks)} mask files (--masks)")
  masks = [maskcode.read_mask(p) for p in args.masks[:len(kept)]]  # any size: encode resizes them to the image
  notes = []
  if len(args.masks) > len(kept):
    notes.append(f"{len(args.masks)} masks for {len(kept)} objects kept: the first {len(kept)} are used")
  model = _load_reference(args.reference)
  data, info = encoder.encode(image, desc, masks, model, args.objects, args.l_d, args.l_all)
  image_io.write_atomic(args.out, data, args.force)
  info = {"file": os.path.basename(args.input), "out": args.out, **info, "notes": notes + info["notes"]}
  if args.json:
    print(json.dumps(info))
    return 0
  for note in info["notes"]:
    print(f"note: {note}", file=sys.stderr)
  print(f"{args.out}: {info['width']}x{info['height']}, J = {info['J']}, {info['bytes']} bytes, {_rates(info)}")
  return 0


def _progress(enabled: bool):
  """on_stage(name, steps) for pipeline.decode: one tqdm bar per stage on stderr."""
  from tqdm import tqdm

  def on_stage(name: str, steps: int):
    bar = tqdm(total=steps, desc=name, unit="step", file=sys.stderr, disable=not enabled, leave=True)

    def on_step(i: int, _state) -> None:
      bar.update()
      if i + 1 == steps:
        bar.close()
    return on_step
  return on_stage


def _components(args: argparse.Namespace):
  """The diffusion models: tiny random ones, or SD + ControlNet from folders."""
  from jaxsemic.sedic import pipeline
  if args.tiny_random:
    return pipeline.tiny_components(0)
  return pipeline.load_components(args.sd, args.controlnet, args.controlnet_format)


def _check_weights(args: argparse.Namespace) -> None:
  """--sd needs --controlnet, and both must exist (checked before any work)."""
  if not args.controlnet:
    raise UserError("--sd needs --controlnet (a latent ControlNet folder or IRControlNet checkpoint)")
  for path in (args.sd, args.controlnet):
    if not os.path.exists(path):
      raise UserError(f"not found: {path}")


def run_decode(args: argparse.Namespace) -> int:
  """Decodes a .sedic file (reference only, or the whole decoder) and writes the PNG atomically."""
  from jaxsemic.codec import image_io
  from jaxsemic.sedic import container, encoder
  start = time.perf_counter()
  image_io.check_output(args.out, args.force, inputs=(args.input,))
  if args.sd:
    _check_weights(args)
  data = _read(args.input)
  f = container.unpack(data)
  model = _load_reference(args.reference, f.ref_model_id)
  container.check_reference(f, model.model_id)
  notes: list[str] = []
  if args.reference_only:
    t0 = time.perf_counter()
    image = encoder.decode_reference(data, model)
    seconds = {"reference": time.perf_counter() - t0}
  else:
    from jaxsemic.sedic import pipeline
    cfg = pipeline.DecoderConfig(object_steps=args.object_steps, overall_steps=args.overall_steps, eta=args.eta,
                                 guidance_method=args.guidance_method)
    cfg.validate()
    components = _components(args)
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always", UserWarning)
      out = encoder.decode(data, model, components, cfg, args.seed,
                           _progress(not args.quiet and not args.json))
    notes += list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)))
    image, seconds = out.image, out.seconds
  image_io.write_png(args.out, image, args.force)
  seconds["wall"] = time.perf_counter() - start
  mode = "reference-only" if args.reference_only else "tiny-random" if args.tiny_random else "sd"
  info = {"out": args.out, "mode": mode, "height": f.height, "width": f.width, "J": f.j, "seed": args.seed,
          "bpp": 8.0 * len(data) / (f.height * f.width), "seconds": seconds, "notes": notes}
  if args.json:
    print(json.dumps(info))
    return 0
  for note in notes:
    print(f"note: {note}", file=sys.stderr)
  stages = ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items() if k not in ("wall",))
  print(f"{args.out}: {f.width}x{f.height} ({mode}), {info['bpp']:.4f} bpp; {stages}")
  return 0


def file_summary(data: bytes) -> dict:
  """Everything `sedic info` reports about a packed file: header fields, texts, mask coverage, rates."""
  from jaxsemic.sedic import container, encoder
  f = container.unpack(data)
  desc, masks = container.decode_semantics(f)
  return {"bytes": len(data), "height": f.height, "width": f.width, "J": f.j, "names_sent": f.names_sent,
          "l_d": f.l_d, "l_all": f.l_all, "reference_model": f.ref_model_id.hex(), "text_model": f.text_model_id,
          "reference_streams": [len(s) for s in f.ref_streams],
          "overall": desc.overall, "objects": [{"name": o.name, "details": o.details} for o in desc.objects],
          "mask_grid": None if masks is None else list(masks.shape[1:]),
          "mask_coverage": None if masks is None else [float(m.mean()) for m in masks],
          **encoder.component_rates(data, f.height, f.width)}


def run_info(args: argparse.Namespace) -> int:
  """Prints the file's header, texts and bits per component."""
  s = file_summary(_read(args.input))
  if args.json:
    print(json.dumps(s))
    return 0
  print(f"{args.input}: {s['width']}x{s['height']}, {s['bytes']} bytes, J = {s['J']}, l_d = {s['l_d']}, "
        f"l_all = {s['l_all']}, reference model {s['reference_model']}, text model {s['text_model']}")
  print(f"  {_rates(s)}")
  bits = s["bits"]
  print(f"  bits: reference {bits['reference']}, text {bits['text']}, masks {bits['masks']}, "
        f"header {bits['header']}, total {bits['total']}")
  print(f"  overall: {s['overall']}")
  for i, o in enumerate(s["objects"]):
    cover = f" [mask {100 * s['mask_coverage'][i]:.1f} % of the grid]" if s["mask_coverage"] else ""
    print(f"  object {i + 1}: {o['name']}: {o['details']}{cover}")
  return 0


def run(args: argparse.Namespace) -> int:
  """Dispatches to the action."""
  return {"encode": run_encode, "decode": run_decode, "info": run_info}[args.action](args)
