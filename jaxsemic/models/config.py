"""Model hyper-parameters: an `ml_collections.ConfigDict` for configs, a frozen dataclass for modules."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import ml_collections

FUSION_MODES = ("none", "concat", "add", "mul")


def default_model_config() -> ml_collections.ConfigDict:
  """SELIC as in the paper (Sec. III, V-A): N = 128, M = 320, 10 ChARM slices, concatenation fusion."""
  c = ml_collections.ConfigDict()
  c.name = "selic"
  c.N = 128  # filters of g_a / g_s / h_a / h_s
  c.M = 320  # channels of the latent y
  c.num_slices = 10  # ChARM slices (Minnen & Singh 2020)
  c.max_support_slices = -1  # previously decoded slices a slice may condition on; -1 = all
  c.charm_hidden = (224, 128)  # widths of the per-slice mean / scale / LRP transforms
  c.fusion = "concat"  # none | concat | add | mul (Table II)
  c.text_dim = 384  # D, the text vector size: all-MiniLM-L6-v2 gives 384, BERT-base 768
  c.upsample = "tconv"  # tconv (Fig. 1) | subpel (Cheng et al. 2020)
  return c


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Hashable model hyper-parameters, the attribute of the Flax modules."""

  name: str = "selic"
  N: int = 128
  M: int = 320
  num_slices: int = 10
  max_support_slices: int = -1
  charm_hidden: tuple[int, ...] = (224, 128)
  fusion: str = "concat"
  text_dim: int = 384
  upsample: str = "tconv"

  def __post_init__(self):
    if self.fusion not in FUSION_MODES:
      raise ValueError(f"fusion must be one of {FUSION_MODES}, got {self.fusion!r}")
    if self.name != "selic":
      raise ValueError(f"a SELIC config has name 'selic', got {self.name!r}")
    if self.M % self.num_slices:
      raise ValueError(f"M={self.M} is not divisible by num_slices={self.num_slices}")

  @classmethod
  def from_any(cls, c: Any) -> "ModelConfig":
    """From a ConfigDict, a plain dict (e.g. config.json) or a ModelConfig."""
    if isinstance(c, cls):
      return c
    d = dict(c.to_dict() if hasattr(c, "to_dict") else c)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
      raise ValueError(f"unknown model config keys: {sorted(unknown)}")
    if "charm_hidden" in d:
      d["charm_hidden"] = tuple(d["charm_hidden"])
    return cls(**d)

  def to_dict(self) -> Mapping[str, Any]:
    d = dataclasses.asdict(self)
    d["charm_hidden"] = list(self.charm_hidden)
    return d

  @property
  def slice_depth(self) -> int:
    return self.M // self.num_slices
