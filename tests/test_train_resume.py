"""Checkpoint/resume: a run killed (SIGKILL) or preempted (SIGTERM) and restarted ends with the same params."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxsemic.training import checkpoint, sharding, trainer
from jaxsemic.training.state import make_optimizer
from test_train_standin import standin_for, tiny_train_config, write_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 24

_RUN = r"""
import sys
from test_train_standin import standin_for, standin_loss, tiny_train_config
from jaxsemic.training import trainer
config = tiny_train_config(sys.argv[1], num_train_steps=int(sys.argv[3]), checkpoint_every=3,
                           log_every=3, batch_size=4)
config.data.worker_count = int(sys.argv[4])
try:
  trainer.train_and_evaluate(config, sys.argv[2], model=standin_for(config), loss_fn=standin_loss)
except trainer.Preempted as e:  # what jaxsemic.train does
  print(e)
  sys.exit(trainer.PREEMPTED_EXIT_STATUS)
"""


def _start(data: str, workdir: str, cache: str, workers: int = 0, steps: int = STEPS) -> subprocess.Popen:
  # A shared compilation cache: the three runs compile the same step once.
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=cache,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
             PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
  # Its own process group, as under SLURM: the test can signal it with its data workers.
  return subprocess.Popen([sys.executable, "-c", _RUN, data, workdir, str(steps), str(workers)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _finished_steps(workdir: str) -> list[int]:
  folder = os.path.join(workdir, checkpoint.CHECKPOINT_SUBDIR)
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


def _group(proc: subprocess.Popen) -> list[str]:
  """Pids still in the process group of `proc` (it leads its own)."""
  found = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True, check=False)
  return found.stdout.split()


def _params(workdir: str, data: str):
  config = tiny_train_config(data)
  init = trainer.init_state_fn(standin_for(config), make_optimizer(config), config, 0)
  abstract = jax.eval_shape(init)
  repl = sharding.replicated(sharding.make_mesh(jax.devices()[:1]))
  target = checkpoint.abstract_with_shardings(abstract, sharding.tree_shardings(abstract, repl))
  params, step = checkpoint.restore_params(workdir, target)
  assert step == STEPS
  return [np.asarray(x) for x in jax.tree.leaves(params)]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
  """(data folder, compilation cache, params) of an uninterrupted run, shared by the resume tests."""
  root = tmp_path_factory.mktemp("straight")
  data = write_images(str(root / "data"), count=5)
  cache, workdir = str(root / "jax_cache"), str(root / "run")
  proc = _start(data, workdir, cache)
  out, _ = proc.communicate(timeout=240)
  assert proc.returncode == 0, out[-3000:]
  params = _params(workdir, data)
  assert max(float(np.max(np.abs(x))) for x in params) > 0
  return data, cache, params


def _wait_for_checkpoint(proc: subprocess.Popen, workdir: str) -> None:
  deadline = time.monotonic() + 200
  while not _finished_steps(workdir) and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.05)


def _resume_and_compare(data: str, workdir: str, cache: str, at: int, reference) -> None:
  proc = _start(data, workdir, cache)
  out, _ = proc.communicate(timeout=240)
  assert proc.returncode == 0, out[-3000:]
  assert f"resumed from checkpoint at step {at}" in out
  resumed = _params(workdir, data)
  assert max(float(np.max(np.abs(x - y))) for x, y in zip(reference, resumed)) == 0.0


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted_run(tmp_path, straight_run):
  data, cache, reference = straight_run
  killed = str(tmp_path / "killed")
  proc = _start(data, killed, cache)
  _wait_for_checkpoint(proc, killed)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=30)
  at_kill = _finished_steps(killed)
  assert at_kill and at_kill[-1] < STEPS, (at_kill, proc.stdout.read()[-2000:])
  _resume_and_compare(data, killed, cache, at_kill[-1], reference)


@pytest.mark.slow
def test_sigterm_checkpoints_the_step_reached_and_resumes(tmp_path, straight_run):
  data, cache, reference = straight_run
  workdir = str(tmp_path / "preempted")
  proc = _start(data, workdir, cache)
  _wait_for_checkpoint(proc, workdir)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=60)
  assert proc.returncode == trainer.PREEMPTED_EXIT_STATUS == 143, out[-3000:]
  found = re.search(r"preempted: checkpoint saved at step (\d+)", out)
  assert found, out[-3000:]
  at = int(found.group(1))
  assert f"stopping at step {at}: SIGTERM" in out
  assert _finished_steps(workdir)[-1] == at and 0 < at < STEPS  # the newest checkpoint is the step reached
  _resume_and_compare(data, workdir, cache, at, reference)


@pytest.mark.slow
def test_sigterm_to_the_process_group_stops_data_workers_after_the_checkpoint(tmp_path, straight_run):
  """SLURM and `kill -TERM -- -PGID` signal the grain workers too: they must keep feeding the trainer (here
  input-bound on large photos) until it has checkpointed, then go, leaving no process behind."""
  _, cache, _ = straight_run
  data = write_images(str(tmp_path / "large"), count=6, size=(1200, 1200))
  workdir = str(tmp_path / "run")
  proc = _start(data, workdir, cache, workers=2, steps=100_000)
  _wait_for_checkpoint(proc, workdir)
  others = [int(p) for p in _group(proc) if int(p) != proc.pid]
  assert len(others) >= 2, proc.stdout.read()[-2000:]  # 2 workers (and multiprocessing's resource tracker)
  for pid in others:  # the workers alone first: had they died, the trainer would fail waiting for a batch
    os.kill(pid, signal.SIGTERM)
  time.sleep(3)
  assert proc.poll() is None, proc.stdout.read()[-3000:]
  os.killpg(proc.pid, signal.SIGTERM)
  out, _ = proc.communicate(timeout=60)
  assert proc.returncode == 143, out[-3000:]
  at = int(re.search(r"preempted: checkpoint saved at step (\d+)", out).group(1))
  assert _finished_steps(workdir)[-1] == at
  deadline = time.monotonic() + 10
  while _group(proc) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not _group(proc)
  proc = _start(data, workdir, cache, workers=2, steps=at + 3)
  out, _ = proc.communicate(timeout=240)
  assert proc.returncode == 0 and f"resumed from checkpoint at step {at}" in out, out[-3000:]
  assert _finished_steps(workdir)[-1] == at + 3
