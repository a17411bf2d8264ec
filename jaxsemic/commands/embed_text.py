"""`jaxsemic embed-text`: caption sidecars -> text-vector cache for training (docs/text.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxsemic import io
from jaxsemic.errors import UserError
from jaxsemic.text import cache, captions

CHUNK = 256  # captions per progress-bar step


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Flags of embed-text."""
  parser.add_argument("captions", nargs="+", help="captions.jsonl file(s): lines {\"file\": ..., \"captions\": [...]}")
  parser.add_argument("--out", required=True, help="output cache (.safetensors)")
  parser.add_argument("--text-encoder", "--encoder", dest="encoder", default=None,
                      help="Hugging Face BERT directory or hub name (default: packaged all-MiniLM-L6-v2)")
  parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
  parser.add_argument("--json", action="store_true", help="print one JSON object with the results")


def run(args: argparse.Namespace) -> int:
  """Embeds every caption and writes the cache atomically."""
  out = Path(args.out)
  if out.exists() and not args.force:
    raise io.exists_error(out)
  table: dict[str, list[str]] = {}
  for path in args.captions:
    for name, caps in captions.read_captions(path).items():
      table.setdefault(name, []).extend(caps)
  if not table:
    raise UserError("the captions file(s) list no images")
  from jaxsemic.text.embed import load_text_encoder  # pylint: disable=import-outside-toplevel
  encoder = load_text_encoder(args.encoder)
  flat = [c for caps in table.values() for c in caps]
  vecs = np.zeros((len(flat), encoder.dim), np.float32)
  with tqdm(total=len(flat), unit="caption", desc="embed-text") as bar:
    for start in range(0, len(flat), CHUNK):
      vecs[start:start + CHUNK] = encoder.embed(flat[start:start + CHUNK])
      bar.update(min(CHUNK, len(flat) - start))
  vectors, start = {}, 0
  for name, caps in table.items():
    vectors[name] = vecs[start:start + len(caps)]
    start += len(caps)
  cache.save_text_cache(out, vectors, encoder=encoder.name, empty=encoder.embed([""])[0], force=args.force)
  if args.json:
    print(json.dumps({"out": str(out), "images": len(vectors), "captions": len(flat), "dim": encoder.dim,
                      "encoder": encoder.name}))
  else:
    print(f"wrote {out}: {len(vectors)} images, {len(flat)} captions, D={encoder.dim} ({encoder.name})")
  return 0
