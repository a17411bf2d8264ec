"""The model registry: every codec family by its paper id (as CompressAI's `zoo`). Adding a family is one line.

The generic code (codec, commands, eval, training) finds a model's config class, module, coding tables, stream
layout and text input here, never by testing a model name itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxsemic.family import Family
from jaxsemic.models import selic_codec
from jaxsemic.zoo import families as zoo

FAMILIES: dict[str, Family] = {f.name: f for f in (
    selic_codec.FAMILY,  # Fu et al. 2024, jaxsemic/models
    zoo.BMSHJ2018_FACTORIZED,  # Ballé et al. 2018, jaxsemic/zoo
    zoo.BMSHJ2018_HYPERPRIOR,
    zoo.MBT2018_MEAN,  # Minnen et al. 2018
    zoo.MBT2018,
    zoo.CHENG2020_ANCHOR,  # Cheng et al. 2020
    zoo.CHENG2020_ATTN,
)}
NAMES = tuple(FAMILIES)
DEFAULT = "selic"  # the family of a config without a `name`


def _name_of(model_config: Any) -> str:
  if dataclasses.is_dataclass(model_config):
    return model_config.name
  d = model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config)
  return d.get("name", DEFAULT)


def family(model_config: Any) -> Family:
  """The family of a config (ConfigDict, dict, frozen config) or of a paper id."""
  name = model_config if isinstance(model_config, str) else _name_of(model_config)
  if name not in FAMILIES:
    raise ValueError(f"unknown model {name!r} (one of {', '.join(NAMES)})")
  return FAMILIES[name]


def config_from_any(model_config: Any) -> Any:
  """The family's frozen config from a ConfigDict, a dict (config.json) or a config."""
  return family(model_config).config_from_any(model_config)


def build_model(model_config: Any):
  """The Flax module of a model config."""
  cfg = config_from_any(model_config)
  return family(cfg).build(cfg)


def text_dim(model_config: Any) -> int:
  """The size of the text vector the model's encoder reads; 0 for models without text."""
  cfg = config_from_any(model_config)
  return family(cfg).text_dim(cfg)
