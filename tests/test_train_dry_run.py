"""The dry run on 8 fake CPU devices in 2 processes: per-device batch, memory and the compiled step's FLOPs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_train_multihost import run_two_processes
from test_train_standin import write_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUN = r"""
import json, sys
from test_train_standin import standin_for, standin_loss, tiny_train_config
from jaxsemic.training import dry_run
config = tiny_train_config(sys.argv[1], batch_size=8, dry_run=True)
print(json.dumps(dry_run.dry_run(config, model=standin_for(config), loss_fn=standin_loss)))
"""


@pytest.mark.slow
def test_dry_run_on_two_processes_of_four_devices(tmp_path):
  data = write_images(str(tmp_path / "data"), count=6)
  outs = run_two_processes([_RUN, data], cwd=str(tmp_path),
                           XLA_FLAGS="--xla_force_host_platform_device_count=4")
  print(outs[0])
  for pid, out in enumerate(outs):
    n = json.loads(out.strip().splitlines()[-1])
    assert f"dry run, process {pid} of 2: mesh ('data': 8), 4 local device(s)" in out
    assert (n["devices"], n["processes"], n["batch_per_process"], n["batch_per_device"]) == (8, 2, 4, 1)
    assert n["process_shard_images"] == 3 and "local batch image [4, 64, 64, 3]" in out
    # The stand-in's 10,388 float32 params (Dense 768->6, 96->4, 6->768 + two scales); Adam keeps 2 moments.
    assert n["num_params"] == 768 * 6 + 6 + 96 * 4 + 4 + 6 * 768 + 768 + 6 + 4 == 10388
    assert n["params_mib_per_device"] * 2 ** 20 == 4 * 10388
    assert n["opt_state_mib_per_device"] >= 2 * n["params_mib_per_device"]
    assert n["step_gflops_per_device"] > 0 and n["xla_temp_mib"] > 0
  assert sorted(os.listdir(tmp_path)) == ["data"]  # nothing trained, no checkpoint, no logs


_CLI = r"""
import sys
from absl import app
from jaxsemic import train
from jaxsemic.training import dry_run, trainer

def preempted(config, workdir):
  raise trainer.Preempted(7)

def dry(config):
  print("dry run called; batch", config.batch_size)

trainer.train_and_evaluate, dry_run.dry_run = preempted, dry
app.run(train.main, argv=["jaxsemic.train", "--config=configs/tiny.py", *sys.argv[1:]])
"""


def _cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
  """jaxsemic.train's main with training and the dry run replaced by stubs (no compile)."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, "-c", _CLI, f"--workdir={tmp_path / 'run'}", *args], env=env,
                        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_cli_preempted_run_exits_143_with_one_line(tmp_path):
  proc = _cli(tmp_path)
  assert proc.returncode == 143, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1] == (
      "jaxsemic.train: preempted: checkpoint saved at step 7; re-run the same command to resume")


def test_cli_dry_run_flag_skips_training(tmp_path):
  proc = _cli(tmp_path, "--config.dry_run=True", "--config.batch_size=8")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "dry run called; batch 8" in proc.stdout and not (tmp_path / "run").exists()


def test_launcher_turns_dry_run_into_the_config_override(tmp_path):
  fake = tmp_path / "bin" / "python"  # stands in for python: prints its arguments
  fake.parent.mkdir()
  fake.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
  fake.chmod(0o755)
  env = dict(os.environ, PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
  proc = subprocess.run([os.path.join(ROOT, "launch", "local_8cpu.sh"), "configs/tiny.py", "runs/x",
                         "--config.lmbda=0.01", "--dry-run"], env=env, capture_output=True, text=True,
                        check=True)
  assert proc.stdout.splitlines() == ["-m", "jaxsemic.train", "--config=configs/tiny.py",
                                      "--workdir=runs/x", "--config.batch_size=8", "--config.lmbda=0.01",
                                      "--config.dry_run=True"]
