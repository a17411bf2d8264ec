"""Golden bitstreams: per registered family, a fixed tiny model and image whose .jsc SHA-256 is pinned.

A change of the format or of any number the range coder sees (transforms, ChARM conditioning, the latent residual
prediction, the text fusion, scale indices, tables) changes these bytes and fails here. If a change is meant to
alter the bitstream, it is a new format: update GOLDEN and docs/bitstream.md together. The hashes were produced
by the code of commit 824f24b (before the registry) and reproduced after it.
"""

import hashlib

import numpy as np
import pytest

from golden_cases import selic_case, zoo_case
from jaxsemic import registry
from jaxsemic.codec import api
from jaxsemic.codec.model_io import CodecModel, abstract_params

GOLDEN = {
    "selic": "1261d8fce76d563ee4f44585ae59fd9cd183140cd53b8843e7074e8e99e5402a",  # 655 bytes
    "bmshj2018-factorized": "0f0401b5473912590aaffcfa4b7dc8c7e61ffceab7a91d21f867a0a81d98fc7d",  # 163 bytes
    "bmshj2018-hyperprior": "d5e19ac4aa9d0c35a3081c15a3e3dafbbb697d9cde228c12ab40b626e5a5d058",  # 123 bytes
    "mbt2018-mean": "73cf4de9a25d9bd5cad678dd296926f9d9e7479f267b18914348793ea4d85cf9",  # 127 bytes
    "mbt2018": "6ae98cd8612334422d22fcf18c9e9baef7027d75663353e12ed10ffe2b16309a",  # 127 bytes
    "cheng2020-anchor": "b5f4af49851ef112f7b57bfe2e505205da0d1c221a8a6da505ea3b1cd3deb345",  # 87 bytes
    "cheng2020-attn": "5f7c4764e3befc8e283f97551c6fbd76dabf687a44590dd53e84b5f9b72558f9",  # 119 bytes
}


def golden_model(name):
  """(CodecModel, image, text or None) of a family's golden case."""
  if name == "selic":
    cfg, params, image, text = selic_case()
    return CodecModel.from_params(params, cfg), image, text
  from jaxsemic.zoo import compressai_import as cimport
  state, image = zoo_case(name)
  cfg = cimport.infer_config(name, state)
  return CodecModel.from_params(cimport.convert(state, cfg, abstract_params(cfg)), cfg), image, None


def test_every_registered_family_has_a_golden_bitstream():
  assert set(GOLDEN) == set(registry.NAMES)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_bitstream(name):
  model, image, text = golden_model(name)
  data, _ = api.compress(model, image, text)
  digest = hashlib.sha256(data).hexdigest()
  assert digest == GOLDEN[name], (f"{name}: the .jsc bytes changed ({len(data)} bytes, sha256 {digest}); "
                                  "the format or the numbers the range coder sees are no longer the same")
  assert api.decompress(model, data).shape == image.shape
