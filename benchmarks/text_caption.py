"""BLIP caption generation speed: Flax port (jit, greedy) vs transformers `generate` (PyTorch), same run.

  python benchmarks/text_caption.py [--layers 4] [--width 256] [--batch 4] [--max-length 20]

Uses a randomly initialised BLIP of the given size (real weights are not available offline) at the real
image size 384 / patch 16 (577 image tokens) and BERT vocabulary (30524); both generate exactly
`max-length` tokens (no [SEP] can win: its logit is pushed down), after one warm-up call each. Prints
seconds per batch and the ratio reference / ours (> 1: ours is faster), and whether the ids agree.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--layers", type=int, default=4)
  parser.add_argument("--width", type=int, default=256)
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--max-length", type=int, default=20)
  args = parser.parse_args()
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel

  from jaxsemic.text import blip, generate  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  w, n = args.width, args.layers
  text = dict(hidden_size=w, encoder_hidden_size=w, intermediate_size=4 * w, num_hidden_layers=n,
              num_attention_heads=w // 64)
  vision = dict(hidden_size=w, intermediate_size=4 * w, num_hidden_layers=n, num_attention_heads=w // 64,
                image_size=384, patch_size=16, initializer_range=0.02)
  model = transformers.BlipForConditionalGeneration(
      transformers.BlipConfig(text_config=text, vision_config=vision)).eval()
  sep = model.config.text_config.sep_token_id
  with torch.no_grad():
    model.text_decoder.cls.predictions.bias[sep] -= 100.0
  pixels = np.random.default_rng(0).normal(size=(args.batch, 384, 384, 3)).astype(np.float32)
  with tempfile.TemporaryDirectory() as tmp:
    model.save_pretrained(tmp)
    vocab = [f"t{i}" for i in range(30524)]
    vocab[:4], vocab[sep] = ["[PAD]", "[UNK]", "[CLS]", "[MASK]"], "[SEP]"
    (Path(tmp) / "vocab.txt").write_text("\n".join(vocab) + "\n")
    module, params, _, _ = blip.load_blip(tmp)
  start = np.array([model.config.text_config.bos_token_id], np.int32)
  kw = dict(max_length=args.max_length, eos_id=sep, pad_id=0)
  ours = lambda: np.asarray(generate.greedy(module, params, pixels, start, **kw))
  hf_pixels = torch.tensor(pixels.transpose(0, 3, 1, 2))
  hf_ids = torch.tensor([[model.config.text_config.bos_token_id, sep]] * args.batch)

  def reference():
    with torch.no_grad():
      return model.generate(pixel_values=hf_pixels, input_ids=hf_ids, max_length=args.max_length,
                            num_beams=1, do_sample=False).numpy()

  def timed(fn):
    fn()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out

  t_ours, a = timed(ours)
  t_ref, b = timed(reference)
  print(f"BLIP {n} layers, width {w}, batch {args.batch}, {args.max_length} tokens; "
        f"torch threads {torch.get_num_threads()}")
  print(f"flax greedy (jit)         {t_ours:7.2f} s/batch")
  print(f"transformers generate     {t_ref:7.2f} s/batch (KV cache)")
  print(f"ratio ref/ours            {t_ref / t_ours:7.2f}   ids equal: {np.array_equal(a, b)}")


if __name__ == "__main__":
  main()
