"""configs/small_cpu.py with SELIC's text path: the text-vs-no-text pair of issue 4 on 2 CPU cores.

  jaxsemic embed-text ../shared/data/train/coco_mini/captions.jsonl \
      ../shared/data/train/flickr8k_thumbs/captions.jsonl --out runs/train_text.safetensors
  python -m jaxsemic.train --config=configs/small_cpu_text.py --workdir=runs/ab_text \
      --config.data.train_dir=DATA --config.data.text_cache=runs/train_text.safetensors
  python -m jaxsemic.train --config=configs/small_cpu.py --workdir=runs/ab_none --config.data.train_dir=DATA

Identical to small_cpu.py (same seed, data order, crops, steps, lambda) except fusion 'concat' (Sec. III-A:
the FC-mapped MiniLM vector broadcast and concatenated with y3, then a residual block) and 10 % caption
dropout as in configs/selic.py. The measured pair is in docs/training.md.
"""

from jaxsemic.training.config import sibling_config


def get_config():
  """small_cpu.py + concatenation fusion of a 384-d all-MiniLM-L6-v2 caption vector."""
  c = sibling_config(__file__, "small_cpu.py")
  c.model.fusion = "concat"
  c.model.text_dim = 384
  c.data.caption_dropout = 0.1
  return c
