"""The no-text baseline of the ablation (paper Fig. 4): SELIC's recipe with fusion 'none'.

  python -m jaxsemic.train --config=configs/baseline.py --workdir=runs/baseline_0075 \
      --config.data.train_dir=DATA --config.lmbda=0.0075

Same steps, seed and λ as configs/selic.py, so the two runs compare the semantic branch alone.
"""

from jaxsemic.training.config import sibling_config


def get_config():
  """configs/selic.py without the semantic branch (no text cache needed)."""
  c = sibling_config(__file__, "selic.py")
  c.model.fusion = "none"
  c.data.caption_dropout = 0.0
  return c
