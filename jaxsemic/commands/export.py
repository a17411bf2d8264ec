"""`jaxsemic export --workdir DIR --out MODEL_DIR`: a training run's latest checkpoint -> inference model."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags of `jaxsemic export`."""
  parser.add_argument("--workdir", required=True, help="training directory (holds checkpoints/)")
  parser.add_argument("--out", required=True, help="model directory to write")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument("--json", action="store_true", help="print one JSON object with the results")


def run(args: argparse.Namespace) -> int:
  """Exports and prints where the model went."""
  from jaxsemic.training.export import export_model  # pylint: disable=import-outside-toplevel
  step = export_model(args.workdir, args.out, force=args.force)
  if args.json:
    print(json.dumps({"out": args.out, "workdir": args.workdir, "step": int(step)}))
  else:
    print(f"exported step {step} of {args.workdir} to {args.out}")
  return 0
