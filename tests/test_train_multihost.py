"""Multi-host: two processes on localhost joined by jax.distributed (CPU, gloo) train a few steps."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from test_train_standin import write_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUN = r"""
import json, sys
import jax
from test_train_standin import standin_for, standin_loss, tiny_train_config
from jaxsemic.training import trainer
config = tiny_train_config(sys.argv[1], num_train_steps=4, checkpoint_every=2, log_every=2,
                           batch_size=4)
last = trainer.train_and_evaluate(config, sys.argv[2], model=standin_for(config), loss_fn=standin_loss)
print(json.dumps({"process": jax.process_index(), "count": jax.process_count(),
                  "devices": jax.device_count(), "loss": last["loss"]}))
"""


def free_port() -> int:
  """A TCP port free on localhost (for the jax.distributed coordinator)."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def start_two_processes(args: list[str], cwd: str | None = None, **env: str) -> list[subprocess.Popen]:
  """Starts `python -c *args` as processes 0 and 1 of a jax.distributed job on localhost."""
  port = free_port()
  procs = []
  for pid in range(2):
    full_env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
                    JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(pid),
                    PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]), **env)
    procs.append(subprocess.Popen([sys.executable, "-c", *args], env=full_env, cwd=cwd,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  return procs


def outputs(procs: list[subprocess.Popen]) -> list[str]:
  """Waits for every process (killing all if one hangs); their combined stdout/stderr."""
  outs = []
  try:
    for p in procs:
      outs.append(p.communicate(timeout=300)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  return outs


def run_two_processes(args: list[str], cwd: str | None = None, **env: str) -> list[str]:
  """start_two_processes, then their outputs; fails the calling test unless both exit 0."""
  procs = start_two_processes(args, cwd, **env)
  outs = outputs(procs)
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


@pytest.mark.slow
def test_two_processes_train_together(tmp_path):
  data = write_images(str(tmp_path / "data"), count=6)
  workdir = str(tmp_path / "run")
  outs = run_two_processes([_RUN, data, workdir])
  import json  # pylint: disable=import-outside-toplevel
  results = [json.loads(out.strip().splitlines()[-1]) for out in outs]
  assert sorted(r["process"] for r in results) == [0, 1]
  assert all(r["count"] == 2 and r["devices"] == 2 for r in results)
  assert "step 4/4" in outs[0] and "step 4/4" not in outs[1]  # only process 0 logs
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]


_PREEMPTIBLE = r"""
import sys
from test_train_standin import standin_for, standin_loss, tiny_train_config
from jaxsemic.training import trainer
config = tiny_train_config(sys.argv[1], num_train_steps=300, checkpoint_every=3, log_every=3, batch_size=4)
try:
  trainer.train_and_evaluate(config, sys.argv[2], model=standin_for(config), loss_fn=standin_loss)
except trainer.Preempted as e:  # what jaxsemic.train does
  print(e)
  sys.exit(trainer.PREEMPTED_EXIT_STATUS)
"""


@pytest.mark.slow
def test_sigterm_to_one_host_stops_both_at_the_same_step_with_a_checkpoint(tmp_path):
  import re  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  data = write_images(str(tmp_path / "data"), count=6)
  workdir = str(tmp_path / "run")
  folder = os.path.join(workdir, "checkpoints")
  procs = start_two_processes([_PREEMPTIBLE, data, workdir])
  deadline = time.monotonic() + 240
  while (not (os.path.isdir(folder) and any(n.isdigit() for n in os.listdir(folder)))
         and all(p.poll() is None for p in procs) and time.monotonic() < deadline):
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)  # one preempted VM: JAX's preemption service tells the others
  outs = outputs(procs)
  steps = []
  for p, out in zip(procs, outs):
    assert p.returncode == 143, out[-3000:]
    steps += [int(x) for x in re.findall(r"preempted: checkpoint saved at step (\d+)", out)]
  assert len(steps) == 2 and steps[0] == steps[1] < 300, steps
  assert max(int(n) for n in os.listdir(folder) if n.isdigit()) == steps[0]
