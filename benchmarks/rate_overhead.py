"""Real file bits against the model's estimated bits (from its likelihoods), per image of a folder.

    python benchmarks/rate_overhead.py --model MODEL_DIR --data ../shared/data/kodak [--limit 4]

Prints, per image, bytes, real and estimated bpp, and whether real <= 1.005 * estimated + 64 bytes; then the
mean ratio. The gap comes from the 16-bit integer tables, the 256-level scale table, escapes and the container.
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True)
  parser.add_argument("--data", required=True)
  parser.add_argument("--limit", type=int, default=0)
  parser.add_argument("--caption", default="", help="caption for text-guided models (default: empty)")
  args = parser.parse_args()

  from jaxsemic.codec import api
  from jaxsemic.codec.model_io import load_model

  model = load_model(args.model)
  text = None
  if model.text_dim:
    from jaxsemic.text_lookup import embed_caption
    text = embed_caption(args.caption, model)
  files = sorted(glob.glob(os.path.join(args.data, "*.png")))[: args.limit or None]
  ratios = []
  for path in files:
    img = api.read_image(path)
    data, info = api.compress(model, img, text)
    out = api.decompress(model, data)
    est_bits = info["estimated_bpp"] * img.shape[0] * img.shape[1]
    ok = 8 * len(data) <= 1.005 * est_bits + 64 * 8
    mse = np.mean((out.astype(np.float64) - img) ** 2)
    ratios.append(8 * len(data) / est_bits)
    print(f"{os.path.basename(path)}: {len(data)} bytes, {info['bpp']:.4f} bpp, estimated "
          f"{info['estimated_bpp']:.4f} bpp, ratio {ratios[-1]:.4f}, PSNR {10 * np.log10(255 ** 2 / mse):.2f} dB, "
          f"within 1.005x+64B: {ok}")
  print(f"mean real/estimated bits: {np.mean(ratios):.4f} over {len(ratios)} images")


if __name__ == "__main__":
  main()
