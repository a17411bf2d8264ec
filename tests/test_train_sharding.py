"""Data parallelism: one train step on 8 fake CPU devices equals the same step on 1 device (also with microbatches)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a subprocess: the device count is fixed when JAX starts.
_SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
from test_train_standin import standin_for, standin_loss, tiny_train_config
from jaxsemic.training import sharding, trainer
from jaxsemic.training.state import make_optimizer

assert jax.device_count() == 8, jax.devices()
config = tiny_train_config("unused", learning_rate=1e-3)
model, optimizer = standin_for(config), make_optimizer(config)
rng = np.random.default_rng(0)
batch = {"image": rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)}
init = trainer.init_state_fn(model, optimizer, config, 0)
results = {}
for n in (1, 8):
  mesh = sharding.make_mesh(jax.devices()[:n])
  shard = sharding.tree_shardings(jax.eval_shape(init), sharding.replicated(mesh))
  state = jax.jit(init, out_shardings=shard)()
  step = trainer.make_sharded_step(model, optimizer, standin_loss, config.lmbda, mesh, shard)
  gbatch = sharding.global_batch(batch, mesh)
  assert len(gbatch["image"].sharding.device_set) == n
  new, metrics = step(state, gbatch, jax.random.PRNGKey(1))
  kernel = new.params["g_a"]["kernel"]
  assert kernel.sharding.is_fully_replicated and len(kernel.sharding.device_set) == n
  results[n] = (float(metrics["loss"]), [np.asarray(x) for x in jax.tree.leaves(new.params)])
  if n == 8:  # The comparison can fail: one changed pixel on the last device must show.
    batch["image"][7, 0, 0, 0] ^= 0x80
    new, _ = step(jax.jit(init, out_shardings=shard)(), sharding.global_batch(batch, mesh),
                  jax.random.PRNGKey(1))
    results["perturbed"] = [np.asarray(x) for x in jax.tree.leaves(new.params)]
for n in (1, 4):  # microbatches (items i::2 of each device's share) give the same step on any device count
  mesh = sharding.make_mesh(jax.devices()[:n])
  shard = sharding.tree_shardings(jax.eval_shape(init), sharding.replicated(mesh))
  step = trainer.make_sharded_step(model, optimizer, standin_loss, config.lmbda, mesh, shard, microbatches=2)
  new, metrics = step(jax.jit(init, out_shardings=shard)(), sharding.global_batch(batch, mesh),
                      jax.random.PRNGKey(1))
  results[f"mb{n}"] = (float(metrics["loss"]), [np.asarray(x) for x in jax.tree.leaves(new.params)])
mb_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(results["mb1"][1], results["mb4"][1]))
loss_diff = abs(results[1][0] - results[8][0])
param_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(results[1][1], results[8][1]))
perturbed = max(float(np.max(np.abs(a - b))) for a, b in zip(results[1][1], results["perturbed"]))
moved = max(float(np.max(np.abs(a - b))) for a, b in zip(results[8][1], jax.tree.leaves(
    jax.jit(init)().params)))
print(json.dumps({"loss": results[1][0], "loss_diff": loss_diff, "param_diff": param_diff,
                  "moved": moved, "perturbed_diff": perturbed, "microbatch_param_diff": mb_diff,
                  "microbatch_loss_diff": abs(results["mb1"][0] - results["mb4"][0])}))
"""


def run_on_fake_devices(script: str, devices: int = 8, timeout: int = 240) -> dict:
  """Runs `script` with `devices` fake CPU devices; returns the JSON of its last stdout line."""
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
  proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                        timeout=timeout, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_one_step_on_8_devices_matches_1_device():
  r = run_on_fake_devices(_SCRIPT)
  assert r["loss_diff"] < 1e-5 * max(1.0, abs(r["loss"]))
  assert r["param_diff"] < 1e-5
  assert r["moved"] > 1e-4  # the step really changed the parameters (lr 1e-3 Adam step)
  assert r["perturbed_diff"] > 1e-5  # and a different batch on one device is detected
  assert r["microbatch_param_diff"] < 1e-5 and r["microbatch_loss_diff"] < 1e-5 * max(1.0, abs(r["loss"]))
  print(r)
