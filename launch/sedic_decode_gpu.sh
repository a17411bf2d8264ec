#!/usr/bin/env bash
# SEDIC decode (Algorithm 1) on one GPU: every .sedic file of a folder -> PNG, one JSON line of stage timings each.
#
#   launch/sedic_decode_gpu.sh SEDIC_DIR OUT_DIR SD21_BASE_DIR IRCONTROLNET [decode flags...]
#   launch/sedic_decode_gpu.sh runs/kodak_sedic runs/kodak_decoded ~/weights/sd21base ~/weights/v2.pth --seed 0
#
# SD21_BASE_DIR: the diffusers folders of stabilityai/stable-diffusion-2-1-base (unet/ vae/ text_encoder/
# tokenizer/ scheduler/); IRCONTROLNET: DiffBIR v2's IRControlNet checkpoint (v2.pth, ldm key names).
# Needs JAX for CUDA (pip install -U "jax[cuda12]") and the `jaxsemic sedic decode` command of issue 12.
# Compiled programs are cached (~/.cache/jaxsemic/xla), so only the first image pays for compilation.
# Under SLURM: sbatch --gpus=1 --time=2:00:00 launch/sedic_decode_gpu.sh ...
set -euo pipefail
usage="usage: launch/sedic_decode_gpu.sh SEDIC_DIR OUT_DIR SD21_BASE_DIR IRCONTROLNET [decode flags...]"
src=${1:?$usage}
out=${2:?$usage}
sd=${3:?$usage}
controlnet=${4:?$usage}
shift 4
mkdir -p "$out"
shopt -s nullglob
files=("$src"/*.sedic)
[ ${#files[@]} -gt 0 ] || { echo "no .sedic files in $src" >&2; exit 1; }
for f in "${files[@]}"; do
  name=$(basename "$f" .sedic)
  [ -e "$out/$name.png" ] && { echo "skip $name (exists)"; continue; }
  jaxsemic sedic decode "$f" --sd "$sd" --controlnet "$controlnet" --controlnet-format ldm \
      --out "$out/$name.png" --json "$@" >> "$out/decode.jsonl"
done
