"""Multi-process start-up: `jax.distributed.initialize` when the run spans several processes."""

from __future__ import annotations

import logging
import os

import jax


def wants_multi_process() -> bool:
  """True when launched as one of several processes (explicit variables, SLURM with >1 task, TPU pod).

  JAXSEMIC_DISTRIBUTED=1 forces jax.distributed.initialize() (with JAX's own cluster detection).
  """
  if os.environ.get("JAXSEMIC_DISTRIBUTED") == "1" or os.environ.get("JAX_COORDINATOR_ADDRESS"):
    return True
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    return True
  hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  return "," in hosts


def initialize() -> None:
  """Calls jax.distributed.initialize once if needed; a no-op for a single process.

  Locally (CPU) set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and JAX_PROCESS_ID;
  SLURM and Cloud TPU are detected by JAX itself. CPU collectives use gloo (JAX's default).
  """
  if not wants_multi_process() or jax.distributed.is_initialized():
    return
  kwargs = {}
  if os.environ.get("JAX_COORDINATOR_ADDRESS"):
    kwargs = dict(coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
                  num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                  process_id=int(os.environ["JAX_PROCESS_ID"]))
  jax.distributed.initialize(**kwargs)
  logging.info("process %d of %d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
