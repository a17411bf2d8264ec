"""The zoo's registry entries: each CompressAI architecture with its module, config class and codec driver."""

from __future__ import annotations

from jaxsemic.family import Family
from jaxsemic.zoo import codec
from jaxsemic.zoo.bmshj2018 import FactorizedPriorModel, ScaleHyperprior
from jaxsemic.zoo.cheng2020 import Cheng2020Anchor, Cheng2020Attention
from jaxsemic.zoo.config import ZooConfig
from jaxsemic.zoo.mbt2018 import JointAutoregressive, MeanScaleHyperprior


def _zoo_family(name: str, module, compress, decompress, num_streams: int, older_decompress=()) -> Family:
  """A zoo family: ZooConfig (validated against `name`), the median-shifted bottleneck tables, no text."""
  def config_from_any(c) -> ZooConfig:
    cfg = ZooConfig.from_any(c)
    if cfg.name != name:
      raise ValueError(f"a {name} config has name {name!r}, got {cfg.name!r}")
    return cfg
  return Family(name=name, config_from_any=config_from_any, build=module,
                make_coding_tables=codec.make_coding_tables, compress=compress, decompress=decompress,
                num_streams=num_streams, older_decompress=older_decompress)


BMSHJ2018_FACTORIZED = _zoo_family("bmshj2018-factorized", FactorizedPriorModel, codec.factorized_compress,
                                   codec.factorized_decompress, 1)
BMSHJ2018_HYPERPRIOR = _zoo_family("bmshj2018-hyperprior", ScaleHyperprior, codec.gaussian_compress,
                                   codec.gaussian_decompress, 2)
MBT2018_MEAN = _zoo_family("mbt2018-mean", MeanScaleHyperprior, codec.gaussian_compress,
                           codec.gaussian_decompress, 2)
# .jsc version 1 coded the context models' y in raster order (codec.context_decompress_v1), version 2 diagonal by
# diagonal with the entropy parameters as 1x1 convs (codec.context_decompress_v2).
_OLDER = ((1, codec.context_decompress_v1), (2, codec.context_decompress_v2))
MBT2018 = _zoo_family("mbt2018", JointAutoregressive, codec.context_compress, codec.context_decompress, 2,
                      _OLDER)
CHENG2020_ANCHOR = _zoo_family("cheng2020-anchor", Cheng2020Anchor, codec.context_compress,
                               codec.context_decompress, 2, _OLDER)
CHENG2020_ATTN = _zoo_family("cheng2020-attn", Cheng2020Attention, codec.context_compress,
                             codec.context_decompress, 2, _OLDER)
