"""Throughput of the Flax MiniLM sentence encoder vs the PyTorch (transformers) reference, same run.

  python benchmarks/text_embed.py [--captions ../shared/data/train/coco_mini/captions.jsonl] [--n 512]

Prints captions/s of both and the ratio (ours / reference); both see the same captions in batches of 64,
after one full warm-up pass (so jit compilation is excluded, as PyTorch has none).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _captions(path: str | None, n: int) -> list[str]:
  if path:
    from jaxsemic.text.captions import read_captions  # pylint: disable=import-outside-toplevel
    caps = [c for cs in read_captions(path).values() for c in cs]
  else:
    caps = [f"a photo of {i} red apples on a wooden table next to a window" for i in range(n)]
  return (caps * (n // max(len(caps), 1) + 1))[:n]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--captions", default=None)
  parser.add_argument("--n", type=int, default=512)
  args = parser.parse_args()
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel

  from jaxsemic.text import embed  # pylint: disable=import-outside-toplevel
  texts = _captions(args.captions, args.n)
  ours = embed.load_text_encoder()
  tok = transformers.AutoTokenizer.from_pretrained(embed.default_model_dir())
  ref_model = transformers.BertModel.from_pretrained(embed.default_model_dir()).eval()

  def reference(batch: list[str]) -> np.ndarray:
    enc = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
      h = ref_model(**enc).last_hidden_state
    m = enc["attention_mask"][..., None].float()
    return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()

  def run(fn) -> tuple[float, np.ndarray]:
    batches = [texts[i:i + 64] for i in range(0, len(texts), 64)]
    for batch in batches:  # warm-up: every length bucket compiled once
      fn(batch)
    start = time.perf_counter()
    out = np.concatenate([fn(batch) for batch in batches])
    return len(texts) / (time.perf_counter() - start), out

  ours_rate, a = run(ours.embed)
  ref_rate, b = run(reference)
  print(f"torch threads {torch.get_num_threads()}; {len(texts)} captions")
  print(f"flax (jit)      {ours_rate:8.1f} captions/s")
  print(f"pytorch (ref)   {ref_rate:8.1f} captions/s")
  print(f"ratio ours/ref  {ours_rate / ref_rate:8.2f}   max |diff| {np.abs(a - b).max():.2e}")


if __name__ == "__main__":
  main()
