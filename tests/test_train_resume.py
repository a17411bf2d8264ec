"""Checkpoint/resume: a run killed (SIGKILL) after a checkpoint and restarted ends with the same params."""

from __future__ import annotations

import os
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
trainer.train_and_evaluate(config, sys.argv[2], model=standin_for(config), loss_fn=standin_loss)
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


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted_run(tmp_path):
  data = write_images(str(tmp_path / "data"), count=5)
  straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
  cache = str(tmp_path / "jax_cache")
  proc = _start(data, killed, cache)
  deadline = time.monotonic() + 200
  while not _finished_steps(killed) and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=30)
  at_kill = _finished_steps(killed)
  assert at_kill and at_kill[-1] < STEPS, (at_kill, proc.stdout.read()[-2000:])

  for workdir in (killed, straight):  # resume the killed run; the reference run goes straight through
    proc = _start(data, workdir, cache)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    if workdir == killed:
      assert f"resumed from checkpoint at step {at_kill[-1]}" in out
  a, b = _params(straight, data), _params(killed, data)
  assert max(float(np.max(np.abs(x - y))) for x, y in zip(a, b)) == 0.0
  assert max(float(np.max(np.abs(x))) for x in a) > 0
