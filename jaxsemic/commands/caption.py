"""`jaxsemic caption DIR --blip WEIGHTS --out captions.jsonl`: BLIP captions for a folder of images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from jaxsemic import io
from jaxsemic.data import files
from jaxsemic.errors import UserError
from jaxsemic.text.outputs import atomic_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags of caption."""
  parser.add_argument("folder", help="folder of PNG/JPEG images (searched recursively)")
  parser.add_argument("--blip", required=True,
                      help="Hugging Face BLIP captioning directory (e.g. blip-image-captioning-base)")
  parser.add_argument("--out", required=True, help="output captions.jsonl (the sidecar format)")
  parser.add_argument("--prompt", default="", help='text the caption continues, e.g. "a picture of"')
  parser.add_argument("--max-length", type=int, default=30, help="maximum tokens, prompt included")
  parser.add_argument("--beams", type=int, default=1, help="beam width (1 = greedy)")
  parser.add_argument("--batch", type=int, default=8, help="images per jitted call")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument("--json", action="store_true", help="print one JSON object with the results")


def run(args: argparse.Namespace) -> int:
  """Captions every image; unreadable images are reported and skipped; writes the jsonl atomically."""
  out = Path(args.out)
  if out.exists() and not args.force:
    raise io.exists_error(out)
  if args.batch < 1:
    raise UserError("--batch must be at least 1")
  paths = files.list_images(args.folder)
  from jaxsemic.text.generate import Captioner  # pylint: disable=import-outside-toplevel
  captioner = Captioner(args.blip, prompt=args.prompt, max_length=args.max_length, num_beams=args.beams,
                        batch_size=args.batch)
  rows, skipped = [], []
  with tqdm(total=len(paths), unit="image", desc="caption") as bar:
    for start in range(0, len(paths), args.batch):
      batch, images = [], []
      for path in paths[start:start + args.batch]:
        try:
          images.append(files.read_rgb(path))
          batch.append(path)
        except files.DECODE_ERRORS as e:
          skipped.append(f"{path}: {e}")
      for path, text in zip(batch, captioner(images) if images else []):
        rows.append({"file": files.relative_key(path, args.folder), "captions": [text]})
      bar.update(len(paths[start:start + args.batch]))
  for line in skipped:
    print(f"jaxsemic caption: skipped unreadable image {line}", file=sys.stderr)
  with atomic_path(out, args.force) as tmp, open(tmp, "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
  if args.json:
    print(json.dumps({"out": str(out), "captions": len(rows), "skipped": len(skipped)}))
  else:
    print(f"wrote {out}: {len(rows)} captions ({len(skipped)} unreadable images skipped)")
  return 0
