"""Builds the SEDIC text prior (`jaxsemic/sedic/text_prior_coco.npz`) from COCO captions.

  python tools/train_text_prior.py --coco ../shared/data/train/coco_mini [--out jaxsemic/sedic/text_prior_coco.npz]

Reads `annotations/captions_val2017_full.json` and `captions.jsonl` (COCO caption annotations, CC BY 4.0, so the
counts may ship; Flickr8k captions are research-only and are not used). Unique captions are grouped by image,
and each image's captions are counted as one stream exactly as `textcode` codes an image's texts (same context
rule, end symbol after each caption). Contexts of order ≥ 2 seen fewer than `--min-count` times are dropped,
and within them symbols seen once, to keep the file small (default 0: nothing is pruned; the order-4 file is
0.34 MB). Order 4, the escape factor 3/2 and the increment 32 were picked among orders 4-5, escape factors
1/2 .. 4 and increments 1 .. 128 on the 24 Kodak descriptions, so the Kodak numbers are slightly optimistic (the
settings tried gave 0.50-0.55× per-image Huffman). Prints the digest to pin in `textcode.MODELS`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from jaxsemic.sedic import textcode


def read_coco_captions(coco: Path) -> list[list[str]]:
  """Unique captions grouped by image (image order by id, captions in file order)."""
  groups: dict[int, list[str]] = defaultdict(list)
  seen: set[str] = set()

  def add(image: int, caption: str) -> None:
    caption = " ".join(caption.split())
    if caption and caption not in seen:
      seen.add(caption)
      groups[image].append(caption)

  full = json.loads((coco / "annotations" / "captions_val2017_full.json").read_text(encoding="utf-8"))
  for a in full["annotations"]:
    add(int(a["image_id"]), a["caption"])
  for line in (coco / "captions.jsonl").read_text(encoding="utf-8").splitlines():
    if line.strip():
      row = json.loads(line)
      for c in row["captions"]:
        add(int(row["coco_id"]), c)
  return [groups[k] for k in sorted(groups)]


def count_contexts(groups: list[list[str]], order: int) -> list[dict[bytes, Counter]]:
  """Per order, {context: Counter(symbol)}, counted with the coder's own context rule."""
  state_model = textcode.TextModel.empty(order)
  tables: list[dict[bytes, Counter]] = [defaultdict(Counter) for _ in range(order + 1)]
  for captions in groups:
    state = textcode.State(state_model)  # the coder's own context rule
    for s in textcode.text_symbols(captions):
      h = state.history
      for k in range(min(order, len(h)) + 1):
        tables[k][h[len(h) - k:]][s] += 1
      state.update(s)
  return tables


def prune(tables: list[dict[bytes, Counter]], min_count: int) -> list[dict[bytes, Counter]]:
  """Drops rare contexts and singleton symbols at orders ≥ 2 (nothing when min_count is 0)."""
  if min_count <= 0:
    return [dict(t) for t in tables]
  out = []
  for k, table in enumerate(tables):
    if k < 2:
      out.append(dict(table))
      continue
    kept = {}
    for ctx, cnt in table.items():
      if sum(cnt.values()) < min_count:
        continue
      row = Counter({s: n for s, n in cnt.items() if n > 1})
      if row:
        kept[ctx] = row
    out.append(kept)
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--coco", default="../shared/data/train/coco_mini")
  parser.add_argument("--out", default=str(Path(textcode.__file__).with_name(textcode.MODELS[1][0])))
  parser.add_argument("--order", type=int, default=4)
  parser.add_argument("--min-count", type=int, default=0, help="prune contexts seen fewer times (0: keep all)")
  parser.add_argument("--escape", default="3/2", help="escape factor e as NUM/DEN")
  parser.add_argument("--increment", type=int, default=32, help="weight of counts seen in the stream")
  parser.add_argument("--force", action="store_true")
  args = parser.parse_args()
  out = Path(args.out)
  if out.exists() and not args.force:
    raise SystemExit(f"{out} exists (use --force)")
  groups = read_coco_captions(Path(args.coco))
  tables = prune(count_contexts(groups, args.order), args.min_count)
  num, den = (int(v) for v in args.escape.split("/"))
  arrays = textcode.model_arrays(tables, (num, den), args.increment)
  fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".npz")
  os.close(fd)
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, out)
  contexts = [len(t) for t in tables]
  print(f"{sum(len(g) for g in groups)} captions, {len(groups)} images; contexts per order {contexts}")
  print(f"wrote {out} ({out.stat().st_size} bytes), digest {textcode.arrays_digest(arrays)[:16]}")


if __name__ == "__main__":
  main()
