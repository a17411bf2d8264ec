"""SELIC's modules and config (its registry entry: `models.selic_codec.FAMILY`, listed in `jaxsemic.registry`)."""

from __future__ import annotations

from jaxsemic.models.config import ModelConfig, default_model_config
from jaxsemic.models.selic import SELIC

__all__ = ["ModelConfig", "SELIC", "default_model_config"]
