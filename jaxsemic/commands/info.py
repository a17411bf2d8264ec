"""`jaxsemic info`: describe a model directory or a .jsc file."""

from __future__ import annotations

import argparse
import json
import os

from jaxsemic.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("path", help="model directory or .jsc file")


def run(args: argparse.Namespace) -> int:
  if os.path.isdir(args.path):
    from jaxsemic.codec.model_io import load_model
    m = load_model(args.path)
    print(json.dumps({"model_id": m.model_id.hex(), "model": m.cfg.to_dict(), "parameters": m.num_params(),
                      "metadata": dict(m.metadata)}, indent=2))
    return 0
  if not os.path.isfile(args.path):
    raise UserError(f"not found: {args.path}")
  from jaxsemic.codec import bitstream
  with open(args.path, "rb") as f:
    bs = bitstream.unpack(f.read())
  print(json.dumps({"model_id": bs.model_id.hex(), "height": bs.height, "width": bs.width,
                    "streams": [len(s) for s in bs.streams]}, indent=2))
  return 0
