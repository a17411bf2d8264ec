"""Tiled coding of large images (issue 15): exact round trips through several tiles, the header, small images."""

import dataclasses

import numpy as np
import pytest

from jaxsemic.codec import api, bitstream, tiling
from jaxsemic.errors import UserError


@pytest.fixture(scope="module")
def image():
  """100x150: padded to 128x192, six 64-pixel tiles (two rows, three columns; windows clipped at borders)."""
  from skimage import data
  return np.ascontiguousarray(data.astronaut()[80:180, 120:270])


@pytest.fixture(scope="module")
def tiled(tiny_model, image):
  text = np.linspace(-1, 1, tiny_model.cfg.text_dim)
  data, info = api.compress(tiny_model, image, text, tile=64)
  return data, info, text


def test_selic_tiled_round_trip_equals_tiled_inference(tiny_model, image, tiled):
  data, info, text = tiled
  bs = bitstream.unpack(data)
  assert (bs.tile, bs.flags, len(bs.streams), info["tile"]) == (64, 0, 6 * 2, 64)
  assert data[5] == bitstream.FLAG_TILED
  img, y_hat = api.decompress(tiny_model, data, return_latents=True)
  rec, y_rec = api.reconstruct_tiled(tiny_model, image, text, tile=64)
  np.testing.assert_array_equal(y_hat, y_rec)  # hard-rounded latents of every tile, bit for bit
  np.testing.assert_array_equal(img, rec)
  assert img.shape == image.shape and img.dtype == np.uint8
  assert len(data) * 8 <= 1.02 * info["estimated_bpp"] * image.shape[0] * image.shape[1] + 6 * (64 * 8 + 60)


def test_zoo_tiled_round_trip_equals_tiled_inference(image):
  from test_zoo_codec import model
  m, _ = model("mbt2018-mean")
  data, _ = api.compress(m, image, tile=64)
  assert len(bitstream.unpack(data).streams) == 12
  img, y_hat = api.decompress(m, data, return_latents=True)
  rec, y_rec = api.reconstruct_tiled(m, image, tile=64)
  np.testing.assert_array_equal(y_hat, y_rec)
  np.testing.assert_array_equal(img, rec)


def test_tiled_analysis_is_the_whole_image_analysis(tiny_model, image):
  """g_a's margin covers its receptive field: the stitched latent is the whole image's (float rounding aside)."""
  padded = api.pad_images(image[None])[0]
  text = np.ones((1, tiny_model.cfg.text_dim), np.float32)
  whole = tiling.analysis(tiny_model, padded, text, 256)
  np.testing.assert_allclose(tiling.analysis(tiny_model, padded, text, 64), whole, atol=1e-4, rtol=0)


def test_small_images_keep_the_untiled_format(tiny_model, photo):
  assert tiling.default_tile(2048, 2048) == 0 and tiling.default_tile(2048, 2049) == tiling.TILE
  data, info = api.compress(tiny_model, photo)
  assert bitstream.unpack(data).tile == 0 and data[5] == 0 and "tile" not in info
  assert api.compress(tiny_model, photo, tile=0)[0] == data


def test_bad_tile_sizes_are_user_errors(tiny_model, photo, tiled):
  with pytest.raises(UserError, match="multiple of 64"):
    api.compress(tiny_model, photo, tile=100)
  data = tiled[0]
  body = bytearray(data[:-4])
  body[23:27] = (96).to_bytes(4, "little")  # the tile side after the 23-byte header
  with pytest.raises(UserError, match="invalid tile size 96"):
    bitstream.unpack(_with_crc(bytes(body)))
  body[23:27] = (128).to_bytes(4, "little")  # a valid side, but the stream table no longer fits the file
  with pytest.raises(UserError, match="stream lengths|truncated"):
    api.decompress(tiny_model, _with_crc(bytes(body)))


def test_tiled_stream_checks(tiny_model, tiled):
  data = tiled[0]
  bs = bitstream.unpack(data)
  streams = list(bs.streams)
  streams[5] = b""  # tile 2's y stream
  with pytest.raises(UserError, match="sub-stream 1 of tile 2 has 0 bytes"):
    api.decompress(tiny_model, bitstream.pack(dataclasses.replace(bs, streams=tuple(streams))))
  streams = list(bs.streams)
  streams[2], streams[4] = streams[4], streams[2]  # two tiles' z streams swapped: another image, or an error
  try:
    api.decompress(tiny_model, bitstream.pack(dataclasses.replace(bs, streams=tuple(streams))))
  except UserError:
    pass
  with pytest.raises(UserError, match="over the limit"):
    api.decompress(tiny_model, data, max_pixels=100 * 150 - 1)


def _with_crc(body: bytes) -> bytes:
  import struct
  import zlib
  return body + struct.pack("<I", zlib.crc32(body))
