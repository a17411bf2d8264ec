#!/usr/bin/env bash
# Evaluates the shipped SELIC models (jaxsemic/shipped) on Kodak and on held-out ImageNet photos, with real
# .jsc bytes, and compares them with JPEG and WebP (issue 13). Reads ../shared/data; writes OUT (default
# docs/results/shipped). Usage: bash benchmarks/eval_shipped.sh [OUT] [MODEL_DIR ...]
#
# BD-rates use pchip: the classic cubic fit needs 4 points per curve and 3 models ship.
# Held out: every tenth file of imagenet_sample (sorted by name, from the fifth on: 50 photos), never
# trained on (configs/selic_cpu_ship.py trains on the other 450 + coco_mini + flickr8k_thumbs).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/results/shipped}
shift || true
MODELS=("$@")
if [ ${#MODELS[@]} -eq 0 ]; then MODELS=(jaxsemic/shipped/selic-q1 jaxsemic/shipped/selic-q2 jaxsemic/shipped/selic-q3); fi
SHARED=../shared/data
REF=$SHARED/rd_reference/compressai/kodak
mkdir -p "$OUT"
HELD=$(mktemp -d)
trap 'rm -rf "$HELD"' EXIT
ls "$SHARED/train/imagenet_sample" | grep -i '\.jpe\?g$' | LC_ALL=C sort | awk 'NR % 10 == 6' | while IFS= read -r f; do
  ln -s "$(realpath "$SHARED/train/imagenet_sample/$f")" "$HELD/$f"
done
echo "held-out ImageNet photos: $(ls "$HELD" | wc -l)"
margs=(); for m in "${MODELS[@]}"; do margs+=(--model "$m"); done
echo "== CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load: $(cut -d' ' -f1-3 /proc/loadavg)"
jaxsemic eval "${margs[@]}" --data "$SHARED/kodak" --captions "$SHARED/kodak/descriptions.jsonl" \
    --name "jaxsemic SELIC (shipped)" --out "$OUT/kodak.json" --force --quiet
jaxsemic eval "${margs[@]}" --data "$HELD" --name "jaxsemic SELIC (shipped)" --out "$OUT/heldout_imagenet.json" \
    --force --quiet
jaxsemic bench jpeg --data "$HELD" --out "$OUT/heldout_imagenet_jpeg.json" --force --quiet
jaxsemic bench webp --data "$HELD" --out "$OUT/heldout_imagenet_webp.json" --force --quiet
echo "== Kodak: BD-rate of the shipped models against CompressAI's JPEG and WebP curves"
jaxsemic bdrate "$REF/jpeg.json" "$OUT/kodak.json" --method pchip
jaxsemic bdrate "$REF/webp.json" "$OUT/kodak.json" --method pchip || echo "(no BD-rate against WebP: the PSNR ranges do not overlap)"
echo "== held-out ImageNet: against JPEG and WebP measured on the same photos"
jaxsemic bdrate "$OUT/heldout_imagenet_jpeg.json" "$OUT/heldout_imagenet.json" --method pchip
jaxsemic bdrate "$OUT/heldout_imagenet_webp.json" "$OUT/heldout_imagenet.json" --method pchip || echo "(no BD-rate against WebP: the PSNR ranges do not overlap)"
jaxsemic plot "$OUT/kodak.json" "$REF/jpeg.json" "$REF/webp.json" "$REF/compressai-bmshj2018-hyperprior_mse_cpu.json" \
    --anchor "$REF/jpeg.json" --bd-method pchip --max-bpp 1.0 --title "Kodak (24 images), real .jsc bytes" --out "$OUT/kodak_rd.png" --force
jaxsemic plot "$OUT/heldout_imagenet.json" "$OUT/heldout_imagenet_jpeg.json" "$OUT/heldout_imagenet_webp.json" \
    --anchor "$OUT/heldout_imagenet_jpeg.json" --bd-method pchip --max-bpp 1.0 --title "50 held-out ImageNet photos" \
    --out "$OUT/heldout_imagenet_rd.png" --force
