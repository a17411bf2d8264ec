"""Golden bitstreams: per registered family, a fixed tiny model and image whose .jsc SHA-256 is pinned.

A change of the format or of any number the range coder sees (transforms, ChARM conditioning, the latent residual
prediction, the text fusion, scale indices, tables) changes these bytes and fails here. If a change is meant to
alter the bitstream, it is a new format: update GOLDEN and docs/bitstream.md together. The hashes were produced
by the code of commit 824f24b (before the registry) and reproduced after it; format version 2 (the context models'
wavefront order) and version 3 (their entropy parameters as matrix products) changed them deliberately, and
version 1 and 2 files still decode (`test_older_version_file_still_decodes`).
"""

import dataclasses
import hashlib

import numpy as np
import pytest

from golden_cases import selic_case, zoo_case
from jaxsemic import registry
from jaxsemic.codec import api, bitstream
from jaxsemic.codec.model_io import CodecModel, abstract_params
from jaxsemic.zoo import codec as zoo_codec

GOLDEN = {  # format version 3
    "selic": "e7a5b8e6376f7d7fc60448e1748b751bd1ed32c9295138d818187f0ebc30a3f0",  # 655 bytes
    "bmshj2018-factorized": "c5220730dfc6c8b3170307fc7b354e0380a5a804bf07b6383bcb9e19a5f7fac7",  # 163 bytes
    "bmshj2018-hyperprior": "ae2800595e16f65a056df88ca3c3179ada0e13e26d570f9eae60f863be5d3074",  # 123 bytes
    "mbt2018-mean": "40e091c095130941eae2cc467ca4fbec21772403191dd5d43bfbb317e4c97328",  # 127 bytes
    "mbt2018": "248e41e150676bcfdbc25fd572c0570f0b195bb386150b3af9212f31549961fa",  # 127 bytes
    "cheng2020-anchor": "a1e9a98cc331cbaff0c98ec18fce33fd0543684cf076d097159155ca57bb0988",  # 87 bytes
    "cheng2020-attn": "43c36e46596de6a1a7685a29c04b7f8dae9d7edda2330c18576c1748735918bd",  # 119 bytes
}
# The same cases in format version 2 (commit 076f2e6 to e0aee13). Version 3 changed only the version byte, except
# for the context models, whose entropy parameters it evaluates as matrix products instead of 1x1 convs.
GOLDEN_V2 = {
    "selic": "8adb3d607ccbbe0de2e284703e1428fbe49d03149b3ba164c1039890cf88aa69",  # 655 bytes
    "bmshj2018-factorized": "0534f4850648bf1207ec65b50aa916f9766048c0918f67997adcfae00dd207b1",  # 163 bytes
    "bmshj2018-hyperprior": "be3d71d9484f785972046b1c2e30826915954ca89b3838a217d2464d50072236",  # 123 bytes
    "mbt2018-mean": "5bed415ae0064973cd89419ef67bb176f119e54e8fdbd9a112ad59eb2bdb1978",  # 127 bytes
    "mbt2018": "f102335036ccba52a7e79fa3f77ac74b2e8eea35731d962a211366f7b77d658f",  # 127 bytes
    "cheng2020-anchor": "3861c5078feb319d087649b92b63fc40cd3c98c8b2ec38f559b332ce8041aec4",  # 87 bytes
    "cheng2020-attn": "16d6dac8497f7e6a9eb62ef93e76b9187405171483e6fa795681cac55eb15879",  # 119 bytes
}
# The same cases in format version 1 (commit 824f24b to ef5a8be). Version 2 changed only the version byte, except
# for the context models, whose y stream it orders by diagonals instead of raster order.
GOLDEN_V1 = {
    "selic": "1261d8fce76d563ee4f44585ae59fd9cd183140cd53b8843e7074e8e99e5402a",
    "bmshj2018-factorized": "0f0401b5473912590aaffcfa4b7dc8c7e61ffceab7a91d21f867a0a81d98fc7d",
    "bmshj2018-hyperprior": "d5e19ac4aa9d0c35a3081c15a3e3dafbbb697d9cde228c12ab40b626e5a5d058",
    "mbt2018-mean": "73cf4de9a25d9bd5cad678dd296926f9d9e7479f267b18914348793ea4d85cf9",
    "mbt2018": "6ae98cd8612334422d22fcf18c9e9baef7027d75663353e12ed10ffe2b16309a",
    "cheng2020-anchor": "b5f4af49851ef112f7b57bfe2e505205da0d1c221a8a6da505ea3b1cd3deb345",
    "cheng2020-attn": "5f7c4764e3befc8e283f97551c6fbd76dabf687a44590dd53e84b5f9b72558f9",
}
CONTEXT_MODELS = ("mbt2018", "cheng2020-anchor", "cheng2020-attn")


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


def _older_file(model, image, text, name, version: int) -> bytes:
  """The golden case as format `version` (1 or 2) wrote it: the context models' y in raster order by the serial
  program (1), or diagonal by diagonal with the entropy parameters as 1x1 convs (2); other families' payloads
  are the same in every version."""
  data, _ = api.compress(model, image, text)
  bs = bitstream.unpack(data)
  streams = bs.streams
  if name in CONTEXT_MODELS:
    x = api.pad_images(image[None]).astype(np.float32) / 255.0
    streams, _ = (zoo_codec.context_streams(model, x, "serial") if version == 1 else
                  zoo_codec.context_streams(model, x, "wavefront", entropy_rows=False))
  return bitstream.pack(dataclasses.replace(bs, streams=tuple(streams), version=version))


@pytest.mark.parametrize("version,name", [(v, n) for v, table in ((1, GOLDEN_V1), (2, GOLDEN_V2))
                                          for n in sorted(table)])
def test_older_version_file_still_decodes(version, name):
  """Versions 1 and 2's bytes are reproduced, and decode (context models: with their own programs) to the
  current version's image within float rounding of the means."""
  model, image, text = golden_model(name)
  old = _older_file(model, image, text, name, version)
  assert hashlib.sha256(old).hexdigest() == (GOLDEN_V1, GOLDEN_V2)[version - 1][name]
  img_old, y_old = api.decompress(model, old, return_latents=True)
  img_new, y_new = api.decompress(model, api.compress(model, image, text)[0], return_latents=True)
  np.testing.assert_allclose(y_old, y_new, atol=1e-4, rtol=0)  # a symbol read in the wrong order would move it by ~1
  assert img_old.shape == img_new.shape
