"""Turns an exported model directory (orbax params) into shippable package data (params.safetensors).

  python tools/package_pretrained.py runs/ship_q2/model jaxsemic/shipped/selic-q2 [--card-json results.json]

Writes config.json (same model id), params.safetensors and tables.npz, then reloads the result with
`model_io.load_model` and checks that params, tables and model id are identical. Each file must stay
≤ 16 MiB (package data limit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from jaxsemic.codec import model_io, params_file  # noqa: E402

MAX_BYTES = 16 * 2 ** 20


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("model", help="exported model directory")
  p.add_argument("out", help="package data directory to write")
  p.add_argument("--force", action="store_true")
  args = p.parse_args()
  src = model_io.load_model(args.model)
  if os.path.exists(args.out):
    if not args.force:
      sys.exit(f"{args.out} exists; pass --force")
    shutil.rmtree(args.out)
  os.makedirs(args.out)
  params_file.save(os.path.join(args.out, params_file.FILENAME), src.params)
  np.savez(os.path.join(args.out, "tables.npz"), **src.tables)
  shutil.copyfile(os.path.join(args.model, "config.json"), os.path.join(args.out, "config.json"))
  back = model_io.load_model(args.out)
  same = jax.tree.all(jax.tree.map(lambda a, b: np.array_equal(a, b), src.params, back.params))
  same_tables = all(np.array_equal(src.tables[k], back.tables[k]) for k in src.tables)
  if not (same and same_tables and back.model_id == src.model_id):
    sys.exit("round trip changed the model")
  for f in os.listdir(args.out):
    size = os.path.getsize(os.path.join(args.out, f))
    print(f"{f}: {size} bytes")
    if size > MAX_BYTES:
      sys.exit(f"{f} is over 16 MiB")
  print(f"wrote {args.out} (model id {src.model_id.hex()}, {src.num_params()} parameters)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
