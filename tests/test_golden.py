"""Golden bitstreams: per registered family, a fixed tiny model and image whose .jsc SHA-256 is pinned.

A change of the format or of any number the range coder sees (transforms, ChARM conditioning, the latent residual
prediction, the text fusion, scale indices, tables) changes these bytes and fails here. If a change is meant to
alter the bitstream, it is a new format: update GOLDEN and docs/bitstream.md together. The hashes were produced
by the code of commit 824f24b (before the registry) and reproduced after it; format version 2 (the context models'
wavefront order) changed them deliberately, and version 1 files still decode (`test_version_1_file_still_decodes`).
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

GOLDEN = {  # format version 2
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


def _version_1_file(model, image, text, name) -> bytes:
  """The golden case as format version 1 wrote it: the context models' y in raster order, by the serial program."""
  data, _ = api.compress(model, image, text)
  bs = bitstream.unpack(data)
  streams = bs.streams
  if name in CONTEXT_MODELS:
    streams, _ = zoo_codec.context_streams(model, api.pad_images(image[None]).astype(np.float32) / 255.0, "serial")
  return bitstream.pack(dataclasses.replace(bs, streams=tuple(streams), version=1))


@pytest.mark.parametrize("name", sorted(GOLDEN_V1))
def test_version_1_file_still_decodes(name):
  """Version 1's bytes are reproduced, and decode (context models: in raster order) to version 2's image."""
  model, image, text = golden_model(name)
  old = _version_1_file(model, image, text, name)
  assert hashlib.sha256(old).hexdigest() == GOLDEN_V1[name]
  img_1, y_1 = api.decompress(model, old, return_latents=True)
  img_2, y_2 = api.decompress(model, api.compress(model, image, text)[0], return_latents=True)
  np.testing.assert_allclose(y_1, y_2, atol=1e-4, rtol=0)  # a symbol read in the wrong order would move it by ~1
  assert img_1.shape == img_2.shape
