"""`jaxsemic import-compressai`: convert a CompressAI checkpoint into a jaxsemic model directory."""

from __future__ import annotations

import argparse
import json
from typing import Any

from jaxsemic.zoo.config import ZOO_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("checkpoint", help="CompressAI .pth.tar (a state dict, or a training checkpoint with one)")
  parser.add_argument("--arch", required=True, choices=ZOO_NAMES, help="CompressAI architecture name")
  parser.add_argument("--out", required=True, help="model directory to create")
  parser.add_argument("--force", action="store_true", help="replace an existing model directory")
  parser.add_argument("--json", action="store_true", help="print one JSON object with the results")


def convert_checkpoint(path: str, arch: str, out: str, *, force: bool, metadata: dict[str, Any]):
  """Converts a CompressAI checkpoint file into the model directory `out`; returns (config, params, model id)."""
  from jaxsemic.codec import model_io  # pylint: disable=import-outside-toplevel
  from jaxsemic.zoo import compressai_import as cimport  # pylint: disable=import-outside-toplevel
  state = cimport.normalise_keys(cimport.load_state_dict_file(path))
  cfg = cimport.infer_config(arch, state)
  params = cimport.convert(state, cfg, model_io.abstract_params(cfg))
  return cfg, params, model_io.save_model(out, params, cfg, force=force, metadata=metadata)


def run(args: argparse.Namespace) -> int:
  import jax  # pylint: disable=import-outside-toplevel
  cfg, params, model_id = convert_checkpoint(args.checkpoint, args.arch, args.out, force=args.force, metadata={
      "source": "jaxsemic import-compressai", "checkpoint": args.checkpoint})
  n = sum(a.size for a in jax.tree.leaves(params))
  if args.json:
    print(json.dumps({"out": args.out, "model": dict(cfg.to_dict()), "model_id": model_id.hex(),
                      "parameters": int(n)}))
  else:
    print(f"wrote {args.out}: {args.arch} N={cfg.N} M={cfg.M}, model {model_id.hex()}, {n:,} parameters")
  return 0
