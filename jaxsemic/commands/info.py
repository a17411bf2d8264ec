"""`jaxsemic info`: describe a model directory (architecture, parameters, how it was trained) or a .jsc file."""

from __future__ import annotations

import argparse
import json
import os

from jaxsemic.errors import UserError

# metadata key -> label of the text view, in this order (any other key is shown after them).
LABELS = {"source": "source", "step": "training step", "lmbda": "lambda", "text_encoder": "text encoder",
          "train_data": "training data", "training": "training config", "workdir": "training run",
          "exported_utc": "exported", "jaxsemic_version": "jaxsemic version"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("path", help="model directory (or shipped model name, e.g. selic-q2) or .jsc file; "
                      "example: jaxsemic info models/tiny")
  parser.add_argument("--json", action="store_true", help="print one JSON object")


def _value(v) -> str:
  """One line for a metadata value: dicts as k=v pairs."""
  if isinstance(v, dict):
    return ", ".join(f"{k}={_value(x)}" for k, x in v.items() if x not in (None, "", [], ()))
  if isinstance(v, float):
    return f"{v:.6g}"
  return json.dumps(v) if isinstance(v, (list, tuple)) else str(v)


def model_lines(info: dict) -> list[str]:
  """The text view of a model's description."""
  meta = info["metadata"]
  rows = [("model id", info["model_id"]), ("architecture", _value(info["model"])),
          ("parameters", f"{info['parameters']:,}")]
  rows += [(LABELS[k], _value(meta[k])) for k in LABELS if k in meta]
  rows += [(k, _value(v)) for k, v in meta.items() if k not in LABELS]
  if not meta:
    rows.append(("metadata", "none recorded (exported before metadata was recorded)"))
  width = max(len(k) for k, _ in rows)
  return [f"{k:<{width}}  {v}" for k, v in rows]


def run(args: argparse.Namespace) -> int:
  from jaxsemic import shipped
  path = shipped.resolve(args.path)
  if os.path.isdir(path):
    from jaxsemic.codec.model_io import load_model
    m = load_model(path)
    info = {"path": path, "model_id": m.model_id.hex(), "model": m.cfg.to_dict(), "parameters": m.num_params(),
            "metadata": dict(m.metadata)}
    print(json.dumps(info, indent=2) if args.json else "\n".join([path] + model_lines(info)))
    return 0
  if not os.path.isfile(path):
    raise UserError(f"not found: {args.path}")
  from jaxsemic.codec import bitstream
  with open(path, "rb") as f:
    bs = bitstream.unpack(f.read())
  info = {"model_id": bs.model_id.hex(), "height": bs.height, "width": bs.width, "version": bs.version,
          "tile": bs.tile, "streams": [len(s) for s in bs.streams]}
  if args.json:
    print(json.dumps(info, indent=2))
  else:
    print(f"{path}: {bs.width}x{bs.height}, format version {bs.version}, model {info['model_id']}"
          + (f", {bs.tile}-pixel tiles" if bs.tile else "") + f", sub-streams of "
          f"{', '.join(map(str, info['streams']))} bytes")
  return 0
