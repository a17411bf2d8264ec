"""SELIC with element-wise multiplication fusion (the fusion variants of Table II).

  python -m jaxsemic.train --config=configs/fusion_mul.py --workdir=runs/fusion_mul \
      --config.data.train_dir=DATA --config.data.text_cache=DATA/text.safetensors

Everything else as configs/selic.py (concatenation fusion); the paper finds concatenation best.
"""

from jaxsemic.training.config import sibling_config


def get_config():
  """configs/selic.py with fusion 'mul'."""
  c = sibling_config(__file__, "selic.py")
  c.model.fusion = "mul"
  return c
