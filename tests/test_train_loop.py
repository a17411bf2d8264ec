"""The training loop end to end with the stand-in codec: logs, eval, NaN handling, CLI errors."""

from __future__ import annotations

import glob
import math
import os
import subprocess
import sys

import pytest

from jaxsemic.errors import UserError
from jaxsemic.training import trainer
from test_train_standin import standin_for, standin_loss, tiny_train_config, write_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_run_logs_evaluates_and_writes_config(tmp_path, capsys):
  data = write_images(str(tmp_path / "data"))
  held_out = write_images(str(tmp_path / "eval"), count=2, size=(70, 90), seed=5)
  config = tiny_train_config(data, num_train_steps=4, log_every=2)
  config.eval.dir = held_out
  config.eval_every = 4
  last = trainer.train_and_evaluate(config, str(tmp_path / "run"), model=standin_for(config),
                                    loss_fn=standin_loss)
  out = capsys.readouterr().out
  assert "step 2/4" in out and "step 4/4" in out and "steps/s" in out and "ETA" in out
  assert "eval @ step 4" in out
  assert last["eval_est_bpp"] > 0 and 0 < last["eval_est_psnr"] < 60
  assert glob.glob(str(tmp_path / "run" / "tensorboard" / "events.out.tfevents.*"))
  assert trainer.read_config(str(tmp_path / "run")).data.crop_size == 64


@pytest.mark.slow
def test_repeated_nan_loss_stops_the_run(tmp_path, capsys):
  data = write_images(str(tmp_path / "data"))
  config = tiny_train_config(data, lmbda=math.nan, max_nonfinite_steps=3, num_train_steps=10)
  with pytest.raises(UserError, match="NaN/inf for 3 steps in a row"):
    trainer.train_and_evaluate(config, str(tmp_path / "run"), model=standin_for(config),
                               loss_fn=standin_loss)
  assert "update skipped (1 in a row)" in capsys.readouterr().err


class _Clock:
  """A trainer-only stand-in for the time module whose monotonic() advances one hour per call."""

  def __init__(self):
    self.now = 0.0

  def monotonic(self) -> float:
    self.now += 3600.0
    return self.now


@pytest.mark.slow
def test_max_train_hours_stops_with_a_checkpoint_at_the_step_reached(tmp_path, monkeypatch, capsys):
  from jaxsemic.training import checkpoint  # pylint: disable=import-outside-toplevel
  data = write_images(str(tmp_path / "data"), count=4)
  config = tiny_train_config(data, num_train_steps=10, checkpoint_every=100, log_every=100,
                             batch_size=2, max_train_hours=2.5)
  monkeypatch.setattr(trainer, "time", _Clock())  # deadline at call 1 + 2.5 h: steps run at calls 2, 3
  trainer.train_and_evaluate(config, str(tmp_path / "run"), model=standin_for(config),
                             loss_fn=standin_loss)
  assert "stopping at step 2: config.max_train_hours=2.5 reached" in capsys.readouterr().err
  manager = checkpoint.make_manager(str(tmp_path / "run"), config)
  assert manager.all_steps() == [2]
  manager.close()


def _train_cli(*args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, "-m", "jaxsemic.train", *args], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=120, check=False)


def test_cli_rejects_a_misspelt_override(tmp_path):
  proc = _train_cli("--config=configs/tiny.py", f"--workdir={tmp_path}", "--config.lmbdaa=0.01")
  assert proc.returncode != 0 and "lmbdaa" in proc.stderr


def test_cli_missing_data_folder_is_one_line(tmp_path):
  proc = _train_cli("--config=configs/tiny.py", f"--workdir={tmp_path / 'w'}",
                    f"--config.data.train_dir={tmp_path / 'nope'}")
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines()[-1].startswith("jaxsemic.train: error: data folder not found")
  assert "Traceback" not in proc.stderr
