"""The classic learned codecs of CompressAI's zoo in Flax, built from jaxsemic's layers and entropy models."""

from __future__ import annotations

import flax.linen as nn

from jaxsemic.zoo.config import ZOO_NAMES, ZooConfig, zoo_model_config

__all__ = ["ZOO_NAMES", "ZooConfig", "build_zoo_model", "zoo_model_config"]


def build_zoo_model(cfg: ZooConfig) -> nn.Module:
  """The Flax module of a zoo architecture."""
  from jaxsemic.zoo import bmshj2018, cheng2020, mbt2018  # pylint: disable=import-outside-toplevel
  classes = {
      "bmshj2018-factorized": bmshj2018.FactorizedPriorModel,
      "bmshj2018-hyperprior": bmshj2018.ScaleHyperprior,
      "mbt2018-mean": mbt2018.MeanScaleHyperprior,
      "mbt2018": mbt2018.JointAutoregressive,
      "cheng2020-anchor": cheng2020.Cheng2020Anchor,
      "cheng2020-attn": cheng2020.Cheng2020Attention,
  }
  return classes[cfg.name](cfg)
