#!/usr/bin/env bash
# Data-parallel training on 8 fake CPU devices in one process: the same sharded code path as 8 GPUs/TPU
# cores, for checking a config or the sharding on a laptop.
#
#   launch/local_8cpu.sh configs/tiny.py runs/tiny8 [--config.batch_size=8 ...]
#
# The global batch (config.batch_size) must be divisible by 8.
set -euo pipefail
config=${1:?usage: launch/local_8cpu.sh CONFIG WORKDIR [overrides...]}
workdir=${2:?usage: launch/local_8cpu.sh CONFIG WORKDIR [overrides...]}
shift 2
# --dry-run (anywhere among the overrides): compile one step, print memory/FLOPs per device, no training.
args=()
for a in "$@"; do [[ $a == --dry-run ]] && a=--config.dry_run=True; args+=("$a"); done
export XLA_FLAGS="--xla_force_host_platform_device_count=8 ${XLA_FLAGS:-}"
export JAX_PLATFORMS=cpu
exec python -m jaxsemic.train --config="$config" --workdir="$workdir" --config.batch_size=8 ${args[@]+"${args[@]}"}
