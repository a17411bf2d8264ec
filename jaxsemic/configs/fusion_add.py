"""SELIC with element-wise addition fusion (the fusion variants of Table II).

  python -m jaxsemic.train --config=configs/fusion_add.py --workdir=runs/fusion_add \
      --config.data.train_dir=DATA --config.data.text_cache=DATA/text.safetensors

Everything else as configs/selic.py (concatenation fusion); the paper finds concatenation best.
"""

from jaxsemic.training.config import sibling_config


def get_config():
  """configs/selic.py with fusion 'add'."""
  c = sibling_config(__file__, "selic.py")
  c.model.fusion = "add"
  return c
