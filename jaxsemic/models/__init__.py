"""Codec models and their registry (CompressAI's `models` + `zoo`)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from jaxsemic.models.config import ModelConfig, default_model_config
from jaxsemic.models.selic import SELIC

__all__ = ["ModelConfig", "SELIC", "build_model", "default_model_config"]


def build_model(model_config: Any) -> nn.Module:
  """The Flax module for a model config (ConfigDict, dict or ModelConfig)."""
  cfg = ModelConfig.from_any(model_config)
  from jaxsemic.zoo import ZOO_NAMES, build_zoo_model  # pylint: disable=import-outside-toplevel
  if cfg.name in ZOO_NAMES:  # CompressAI's architectures (issue 6, jaxsemic/zoo)
    return build_zoo_model(cfg)
  if cfg.name != "selic":
    raise ValueError(f"unknown model {cfg.name!r}")
  return SELIC(cfg)
