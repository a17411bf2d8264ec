"""The classic learned codecs of CompressAI's zoo in Flax, built from jaxsemic's layers and entropy models.

Registered by paper id in `jaxsemic.registry` (entries in `zoo.families`).
"""

from __future__ import annotations

from jaxsemic.zoo.config import ZOO_NAMES, ZooConfig, zoo_model_config

__all__ = ["ZOO_NAMES", "ZooConfig", "zoo_model_config"]
