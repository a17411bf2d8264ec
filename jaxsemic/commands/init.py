"""`jaxsemic init`: write a randomly initialised inference model (params + config + coding tables)."""

from __future__ import annotations

import argparse
import json

from jaxsemic.config_io import load_config
from jaxsemic.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--config", required=True, help="config file (get_config(); its .model is used)")
  parser.add_argument("--out", required=True, help="model directory to create")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--force", action="store_true", help="replace an existing model directory")
  parser.add_argument("--json", action="store_true", help="print one JSON object with the results")


def run(args: argparse.Namespace) -> int:
  import jax

  from jaxsemic import registry
  from jaxsemic.codec import model_io
  config = load_config(args.config)
  model_cfg = config.model if "model" in config else config
  try:
    cfg = registry.config_from_any(model_cfg)
  except (TypeError, ValueError) as e:
    raise UserError(f"invalid model config in {args.config}: {e}") from e
  params = model_io.init_params(cfg, args.seed)
  model_id = model_io.save_model(args.out, params, cfg, force=args.force,
                                 metadata={"source": "jaxsemic init", "seed": args.seed})
  n = sum(a.size for a in jax.tree.leaves(params))
  if args.json:
    print(json.dumps({"out": args.out, "model_id": model_id.hex(), "parameters": int(n)}))
  else:
    print(f"wrote {args.out}: model {model_id.hex()}, {n:,} parameters ({n * 4 / 1e6:.1f} MB as float32)")
  return 0
