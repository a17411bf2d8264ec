#!/usr/bin/env bash
# Cloud TPU pod slice: runs the same command on every worker; JAX finds the pod topology itself and
# jaxsemic.training.distributed calls jax.distributed.initialize() (TPU_WORKER_HOSTNAMES lists >1 host).
# The workdir must be a bucket or filesystem every worker sees (orbax writes gs:// paths directly).
#
#   launch/tpu_pod.sh my-tpu-v4-32 us-central2-b configs/selic.py gs://bucket/runs/selic_0075 \
#       --config.data.train_dir=/mnt/data/train --config.data.text_cache=/mnt/data/text.safetensors
#
# Before: the repository and data on every worker (e.g. a shared disk), and `pip install -e '.[gcs]'
# 'jax[tpu]'` there (gcs: gcsfs, for the gs:// workdir). config.batch_size is global: a multiple of the number of TPU chips.
set -euo pipefail
tpu=${1:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
zone=${2:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
config=${3:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
workdir=${4:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [overrides...]}
shift 4
# --dry-run (anywhere among the overrides): compile one step, print memory/FLOPs per device, no training.
args=()
for a in "$@"; do [[ $a == --dry-run ]] && a=--config.dry_run=True; args+=("$a"); done
repo=${JAXSEMIC_REPO:-~/jaxsemic}
overrides=$(printf ' %q' ${args[@]+"${args[@]}"})
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command \
  "cd $repo && JAXSEMIC_DISTRIBUTED=1 python -m jaxsemic.train --config=$config --workdir=$workdir$overrides"
