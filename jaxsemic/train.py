"""Trains a model: `python -m jaxsemic.train --config=configs/selic.py --workdir=DIR`.

Overrides: `--config.lmbda=0.0075 --config.model.M=192 --config.data.train_dir=...`
(the config is locked: a misspelt field is an error). Re-running with the same workdir resumes.
`--config.dry_run=True` compiles one step and prints memory and FLOPs per device without training.
On SIGTERM (preemptible VMs, SLURM time limits) it checkpoints the step reached and exits with status 143.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxsemic.errors import UserError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and the exported model.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
  """Runs training (then the optional export + round-trip demo) and exits 1 on a UserError."""
  del argv
  try:
    getattr(_CONFIG.value, "seed", None)  # config_flags loads the file lazily: a missing one fails here
  except OSError as e:
    reason = [ln.strip() for ln in str(e).splitlines() if ln.strip()][-1]
    print(f"jaxsemic.train: error: cannot load --config: {reason}", file=sys.stderr)
    sys.exit(2)
  if not flags.FLAGS["verbosity"].present:  # orbax and grain log every save at INFO: keep the console readable
    logging.set_verbosity(logging.WARNING)
  from jaxsemic.training import demo, dry_run, trainer  # pylint: disable=import-outside-toplevel
  try:
    if _CONFIG.value.dry_run:
      dry_run.dry_run(_CONFIG.value)
      return
    trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    if _CONFIG.value.demo.enabled:
      demo.export_and_roundtrip(_CONFIG.value, _WORKDIR.value)
  except trainer.Preempted as e:
    print(f"jaxsemic.train: {e}", file=sys.stderr)
    sys.exit(trainer.PREEMPTED_EXIT_STATUS)
  except UserError as e:
    print(f"jaxsemic.train: error: {e}", file=sys.stderr)
    sys.exit(1)


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing, with a misspelt config field or a missing config file as one line (exit 2);
  `--config=configs/NAME.py` finds the packaged config when run outside a clone."""
  from jaxsemic.config_io import resolve_config_path  # pylint: disable=import-outside-toplevel
  argv = [f"--config={resolve_config_path(a[len('--config='):])}" if a.startswith("--config=") else
          resolve_config_path(a) if i and argv[i - 1] == "--config" else a for i, a in enumerate(argv)]
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError, ValueError, TypeError, OSError) as e:
    text = str(e).replace("\\n", "\n").replace("\\'", "'")
    lines = [ln.strip().strip("'\"") for ln in text.splitlines() if ln.strip()]
    hint = next((ln for ln in lines if ln.startswith("Did you mean")), "")
    missing = next((ln for ln in lines if "No such file" in ln), "")
    msg = missing or (f"unknown config field {lines[0]}" + (f"; {hint}" if hint else "")
                      if isinstance(e, AttributeError) else lines[0] if lines else type(e).__name__)
    print(f"jaxsemic.train: error: {msg}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  from jaxsemic.runtime import use_huge_pages
  use_huge_pages()  # re-runs this command with huge pages: each step's buffers stop page-faulting (runtime.py)
  app.run(main, flags_parser=parse_flags)
