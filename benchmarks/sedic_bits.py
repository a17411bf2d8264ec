"""Bits of the SEDIC text and mask coders against the baselines (issue 12; design note §2-3).

    python benchmarks/sedic_bits.py [--data ../shared/data] [--per-image]

Text: the 24 Kodak descriptions (`kodak/descriptions.jsonl`), one stream per image. "full" is what the encoder
sends (overall, then name_j and details_j of every object); "paper" is overall + details (no names), as the paper
counts it; "limited" is "full" after the default word limits (J = 3, l_d = 30, l_all = 50). Ours is the real
stream length (`encode_texts`, round trip checked) with the shipped COCO prior; Huffman is optimal per image
(or per string) with its code table; zlib -9 and brotli q11 are whole files.
Masks: COCO instance polygons of `train/coco_mini` (the 3 largest per image), stretched to 768×512 and reduced to
the 64×96 latent grid. val2017 is held out; train2017 is the set the shipped prior was learned from. Ours is the
real stream (`encode_masks`, round trip checked); KT is the same coder without the prior (ideal bits + 16);
RLE is Exp-Golomb runs with the best order per mask; PNG is a 1-bit PNG (whole file, and IDAT payload only).
bpp is over 768×512 = 393,216 pixels.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from jaxsemic.sedic import cocomasks, descriptions, maskcode, textcode

PIXELS = 768 * 512


def text_rows(descs: dict, model: textcode.TextModel, variant: str) -> list[dict]:
  """Per image: bits of every method for one message variant."""
  rows = []
  for name, d in descs.items():
    if variant == "limited":
      d = descriptions.limit_words(d)
    msg = descriptions.texts(d, names=variant != "paper")
    data = textcode.encode_texts(msg, model)
    if textcode.decode_texts(data, len(msg), model) != msg:
      raise SystemExit(f"text round trip failed on {name}")
    rows.append({"file": name, "chars": sum(len(s.encode()) + 1 for s in msg), "ours": 8 * len(data),
                 "ideal": textcode.text_bits(msg, model), "huffman": textcode.huffman_bits(msg, "image"),
                 "huffman_string": textcode.huffman_bits(msg, "string"), "zlib": textcode.zlib_bits(msg),
                 "brotli": textcode.brotli_bits(msg)})
  return rows


def mask_rows(masks: dict) -> list[dict]:
  """Per image: bits of every method for its latent-grid masks bool[J, 64, 96]."""
  rows = []
  kt = maskcode.kt_prior()
  for image_id, m in masks.items():
    data = maskcode.encode_masks(m)
    if not np.array_equal(maskcode.decode_masks(data, *m.shape), m):
      raise SystemExit(f"mask round trip failed on image {image_id}")
    rows.append({"image": image_id, "J": len(m), "ours": 8 * len(data), "ideal": maskcode.mask_bits(m),
                 "kt": maskcode.mask_bits(m, kt) + 16, "rle": sum(maskcode.rle_bits(x) for x in m),
                 "png": sum(maskcode.png_bits(x) for x in m),
                 "png_payload": sum(maskcode.png_bits(x, payload=True) for x in m)})
  return rows


def print_table(title: str, rows: list[dict], cols: list[str], ref: str) -> None:
  """Mean bits, bpp and mean per-image ratio to `ref` for each column."""
  print(f"\n{title} ({len(rows)} images)")
  print(f"| method | bits/img | bpp | mean ratio to {ref} | max ratio |")
  print("|---|---|---|---|---|")
  for c in cols:
    if any(r[c] is None for r in rows):
      print(f"| {c} | n/a (not installed) | | | |")
      continue
    v = np.array([r[c] for r in rows], np.float64)
    ratio = v / np.array([r[ref] for r in rows], np.float64)
    print(f"| {c} | {v.mean():.1f} | {v.mean() / PIXELS:.5f} | {ratio.mean():.3f} | {ratio.max():.3f} |")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default="../shared/data")
  parser.add_argument("--per-image", action="store_true", help="also print every image's row")
  args = parser.parse_args()
  data = Path(args.data)

  model = textcode.TextModel.load()
  descs = descriptions.read_all_descriptions(data / "kodak" / "descriptions.jsonl")
  cols = ["ours", "ideal", "huffman", "huffman_string", "zlib", "brotli"]
  for variant in ("full", "paper", "limited"):
    t = time.perf_counter()
    rows = text_rows(descs, model, variant)
    print_table(f"Text, Kodak, {variant} message (ours: encode + decode {time.perf_counter() - t:.1f} s)", rows,
                cols, "huffman")
    over = max(r["ours"] - r["ideal"] for r in rows)
    print(f"real - ideal: at most {over:.1f} bits; chars/img {np.mean([r['chars'] for r in rows]):.0f}")
    if args.per_image:
      for r in rows:
        print(" ", {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()})

  ann = data / "train" / "coco_mini" / "annotations"
  for split in ("val2017", "train2017"):
    grids = {k: np.stack([maskcode.to_latent_grid(x, (64, 96)) for x in v])
             for k, v in cocomasks.instance_masks(cocomasks.read_instances(ann / f"instances_{split}.json")).items()}
    t = time.perf_counter()
    rows = mask_rows(grids)
    note = "held out" if split == "val2017" else "the prior's training set"
    print_table(f"Masks, COCO {split} ({note}), 64x96 latent grid, {np.mean([r['J'] for r in rows]):.2f} masks/img "
                f"(ours: encode + decode {time.perf_counter() - t:.1f} s)", rows,
                ["ours", "ideal", "kt", "rle", "png", "png_payload"], "rle")
    total = sum(r["ours"] for r in rows) / sum(r["ideal"] for r in rows) - 1
    over = max(r["ours"] - r["ideal"] for r in rows)
    print(f"real vs ideal: {100 * total:+.2f} % over all images, at most {over:.1f} bits on one image")


if __name__ == "__main__":
  main()
