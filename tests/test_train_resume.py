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
try:
  trainer.train_and_evaluate(config, sys.argv[2], model=standin_for(config), loss_fn=standin_loss)
except trainer.Preempted as e:  # what jaxsemic.train does
  print(e)
  sys.exit(trainer.PREEMPTED_EXIT_STATUS)
"""


def _start(data: str, workdir: str, cache: str) -> subprocess.Popen:
  # A shared compilation cache: the three runs compile the same step once.
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=cache,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
             PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
  return subprocess.Popen([sys.executable, "-c", _RUN, data, workdir, str(STEPS)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finished_steps(workdir: str) -> list[int]:
  folder = os.path.join(workdir, checkpoint.CHECKPOINT_SUBDIR)
  return sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []


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
