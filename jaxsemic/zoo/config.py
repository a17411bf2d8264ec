"""Hyper-parameters of the classic CompressAI architectures (the "zoo"), one frozen dataclass for all of them.

Each zoo family registers `ZooConfig.from_any` as its config class (`jaxsemic.registry`); the name says which.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import ml_collections

# name -> (N, M) of CompressAI's highest-quality pretrained models (compressai.zoo.image.cfgs).
ZOO_DEFAULTS: dict[str, tuple[int, int]] = {
    "bmshj2018-factorized": (192, 320),
    "bmshj2018-hyperprior": (192, 320),
    "mbt2018-mean": (192, 320),
    "mbt2018": (192, 320),
    "cheng2020-anchor": (192, 192),
    "cheng2020-attn": (192, 192),
}
ZOO_NAMES = tuple(ZOO_DEFAULTS)
# Architectures whose M is tied to N (Cheng et al. 2020 use M = N).
M_EQUALS_N = ("cheng2020-anchor", "cheng2020-attn")


def zoo_model_config(name: str, N: int | None = None, M: int | None = None) -> ml_collections.ConfigDict:
  """The `config.model` of a zoo architecture (CompressAI's sizes unless N / M are given)."""
  if name not in ZOO_DEFAULTS:
    raise ValueError(f"unknown zoo architecture {name!r} (one of {', '.join(ZOO_NAMES)})")
  n, m = ZOO_DEFAULTS[name]
  n = n if N is None else N
  m = (n if name in M_EQUALS_N else m) if M is None else M
  return ml_collections.ConfigDict({"name": name, "N": n, "M": m})


@dataclasses.dataclass(frozen=True)
class ZooConfig:
  """Hashable hyper-parameters of a zoo model (the attribute of its Flax module)."""

  name: str
  N: int
  M: int

  def __post_init__(self):
    if self.name not in ZOO_DEFAULTS:
      raise ValueError(f"unknown zoo architecture {self.name!r}")
    if self.name in M_EQUALS_N and self.M != self.N:
      raise ValueError(f"{self.name} has M = N, got N={self.N}, M={self.M}")
    if self.N < 2 or self.M < 1 or self.N % 2:
      raise ValueError(f"N must be even and >= 2, M >= 1 (got N={self.N}, M={self.M})")

  @classmethod
  def from_any(cls, c: Any) -> "ZooConfig":
    """From a ConfigDict, a plain dict (e.g. config.json) or a ZooConfig."""
    if isinstance(c, cls):
      return c
    d = dict(c.to_dict() if hasattr(c, "to_dict") else c)
    unknown = set(d) - {"name", "N", "M"}
    if unknown:
      raise ValueError(f"unknown keys for zoo model {d.get('name')!r}: {sorted(unknown)}")
    defaults = zoo_model_config(d["name"], d.get("N"), d.get("M"))
    return cls(d["name"], int(defaults.N), int(defaults.M))

  def to_dict(self) -> Mapping[str, Any]:
    return dataclasses.asdict(self)
