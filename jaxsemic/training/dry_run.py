"""A dry run: build everything a training run needs and compile one step, then report memory and FLOPs.

`python -m jaxsemic.train --config=... --workdir=... --config.dry_run=True` (launchers: `--dry-run`)
checks a pod configuration in a minute: mesh, shardings, abstract state, this process's data shard and one
compiled train step. Nothing is trained and nothing is written to the workdir.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from jaxsemic.training import checkpoint, distributed, sharding, trainer
from jaxsemic.training.step import LossFn

_MIB = 2.0 ** 20


def tree_bytes(tree: Any) -> int:
  """Total bytes of the array leaves of `tree` (arrays or ShapeDtypeStructs)."""
  return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of the global arrays in `tree`."""
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


def cost_numbers(compiled: Any) -> dict[str, float]:
  """FLOPs and memory of a compiled (per-device, SPMD-partitioned) executable from XLA's analyses."""
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older JAX returns one dict per program
  out = {"step_gflops_per_device": float(cost.get("flops", float("nan"))) / 1e9}
  mem = compiled.memory_analysis()
  if mem is not None:
    for name in ("argument", "output", "temp", "alias", "generated_code"):
      out[f"xla_{name}_mib"] = getattr(mem, f"{name}_size_in_bytes") / _MIB
  return out


def dry_run(config: ml_collections.ConfigDict, *, model: nn.Module | None = None,
            loss_fn: LossFn | None = None) -> dict[str, float]:
  """Builds the run, reads one local batch, compiles the sharded step; prints and returns the numbers."""
  distributed.initialize()
  run = trainer.build(config, model, loss_fn)
  n_dev, proc = run.mesh.shape[sharding.DATA_AXIS], jax.process_index()
  local = next(iter(run.loader))
  batch = sharding.global_batch(local, run.mesh)
  state = checkpoint.abstract_with_shardings(run.abstract, run.state_shardings)
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)
  rng = jax.ShapeDtypeStruct(rng.shape, rng.dtype, sharding=sharding.replicated(run.mesh))
  step_fn = trainer.make_sharded_step(run.model, run.optimizer, run.loss_fn, config.lmbda, run.mesh,
                                      run.state_shardings, config.get("compute_dtype", "float32"),
                                      run.microbatches)
  compiled = step_fn.lower(state, abstract_like(batch), rng).compile()
  shard_images = len(run.train_set.paths) // jax.process_count()
  numbers = {
      "processes": jax.process_count(), "devices": n_dev, "local_devices": jax.local_device_count(),
      "images": len(run.train_set.paths), "process_shard_images": shard_images,
      "batch_per_process": config.batch_size // jax.process_count(),
      "batch_per_device": config.batch_size // n_dev,
      "microbatches": run.microbatches,
      "batch_mib_per_device": tree_bytes(batch) / n_dev / _MIB,
      "params_mib_per_device": tree_bytes(run.abstract.params) / _MIB,  # replicated
      "opt_state_mib_per_device": tree_bytes(run.abstract.opt_state) / _MIB,
      "num_params": sum(int(np.prod(x.shape)) for x in jax.tree.leaves(run.abstract.params)),
      **cost_numbers(compiled)}
  print(format_report(numbers, proc, {k: tuple(v.shape) for k, v in local.items()}), flush=True)
  return numbers


def format_report(n: dict[str, float], process: int, local_shapes: dict[str, tuple]) -> str:
  """The dry run's printout (one block per process)."""
  shapes = ", ".join(f"{k} {list(v)}" for k, v in sorted(local_shapes.items()))
  lines = [
      f"dry run, process {process} of {n['processes']}: mesh ('data': {n['devices']}), "
      f"{n['local_devices']} local device(s)",
      f"  data: {n['images']} images, {n['process_shard_images']} in this process's shard; "
      f"local batch {shapes}",
      f"  batch per device: {n['batch_per_device']} examples in {n['microbatches']} microbatch(es), "
      f"{n['batch_mib_per_device']:.2f} MiB",
      f"  params per device: {n['num_params']:,} parameters, {n['params_mib_per_device']:.2f} MiB "
      "(replicated)",
      f"  optimizer state per device: {n['opt_state_mib_per_device']:.2f} MiB",
      f"  compiled step per device: {n['step_gflops_per_device']:.3f} GFLOP",
  ]
  if "xla_temp_mib" in n:
    lines.append(f"  XLA memory per device: arguments {n['xla_argument_mib']:.2f} MiB, "
                 f"outputs {n['xla_output_mib']:.2f} MiB (aliased {n['xla_alias_mib']:.2f}), "
                 f"temporaries {n['xla_temp_mib']:.2f} MiB, code {n['xla_generated_code_mib']:.2f} MiB")
  return "\n".join(lines)
