"""`jaxsemic import-compressai`: convert a CompressAI checkpoint into a jaxsemic model directory."""

from __future__ import annotations

import argparse

from jaxsemic.zoo.config import ZOO_NAMES


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("checkpoint", help="CompressAI .pth.tar (a state dict, or a training checkpoint with one)")
  parser.add_argument("--arch", required=True, choices=ZOO_NAMES, help="CompressAI architecture name")
  parser.add_argument("--out", required=True, help="model directory to create")
  parser.add_argument("--force", action="store_true", help="replace an existing model directory")


def run(args: argparse.Namespace) -> int:
  import jax  # pylint: disable=import-outside-toplevel
  from jaxsemic.codec import model_io  # pylint: disable=import-outside-toplevel
  from jaxsemic.zoo import compressai_import as cimport  # pylint: disable=import-outside-toplevel
  state = cimport.normalise_keys(cimport.load_state_dict_file(args.checkpoint))
  cfg = cimport.infer_config(args.arch, state)
  params = cimport.convert(state, cfg, model_io.abstract_params(cfg))
  model_id = model_io.save_model(args.out, params, cfg, force=args.force,
                                 metadata={"source": "jaxsemic import-compressai", "checkpoint": args.checkpoint})
  n = sum(a.size for a in jax.tree.leaves(params))
  print(f"wrote {args.out}: {cfg.name} N={cfg.N} M={cfg.M}, model {model_id.hex()}, {n:,} parameters")
  return 0
