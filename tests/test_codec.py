"""Compress / decompress with a tiny random SELIC: exactness, sizes, estimated vs real bits, bad bitstreams."""

import numpy as np
import pytest

from jaxsemic.codec import api, bitstream
from jaxsemic.errors import UserError


def test_round_trip_equals_inference_pass(tiny_model, photo):
  text = np.linspace(-1, 1, tiny_model.cfg.text_dim)
  data, info = api.compress(tiny_model, photo, text)
  img, y_hat = api.decompress(tiny_model, data, return_latents=True)
  rec, out = api.reconstruct(tiny_model, photo[None], text[None])
  np.testing.assert_array_equal(y_hat, np.asarray(out["y_hat"]))  # hard-rounded latents, bit for bit
  np.testing.assert_array_equal(img, rec[0])
  assert img.shape == photo.shape and img.dtype == np.uint8
  assert info["bytes"] == len(data)
  assert info["bpp"] == pytest.approx(8 * len(data) / (photo.shape[0] * photo.shape[1]))
  # Real bits close to the model's own estimate (untrained model: the tables are the only gap).
  assert len(data) * 8 <= 1.02 * info["estimated_bpp"] * photo.shape[0] * photo.shape[1] + 64 * 8 + 8 * 60


def test_text_changes_the_encoding_only(tiny_model, photo):
  a, _ = api.compress(tiny_model, photo, np.zeros(tiny_model.cfg.text_dim))
  b, _ = api.compress(tiny_model, photo, np.full(tiny_model.cfg.text_dim, 3.0))
  assert a != b  # the text vector reaches the latent
  assert api.decompress(tiny_model, b).shape == photo.shape  # and the decoder needs no text


@pytest.mark.parametrize("shape", [(1, 1), (33, 65), (64, 1)])  # pads to 64x64 or 64x128 only
def test_odd_sizes(tiny_model, shape):
  img = (np.random.default_rng(sum(shape)).random(shape + (3,)) * 255).astype(np.uint8)
  data, info = api.compress(tiny_model, img)
  assert (info["height"], info["width"]) == shape
  out = api.decompress(tiny_model, data)
  assert out.shape == shape + (3,)
  np.testing.assert_array_equal(out, api.reconstruct(tiny_model, img[None])[0][0])


def test_bad_bitstreams_give_user_errors(tiny_model, photo, tiny_cfg, tiny_params):
  data, _ = api.compress(tiny_model, photo)
  with pytest.raises(UserError, match="magic"):
    api.decompress(tiny_model, b"PNG not a jsc file at all")
  with pytest.raises(UserError, match="truncated|corrupt"):
    api.decompress(tiny_model, data[: len(data) // 2])
  flipped = bytearray(data)
  flipped[len(data) // 2] ^= 0x10
  with pytest.raises(UserError, match="corrupt"):
    api.decompress(tiny_model, bytes(flipped))
  from jaxsemic.codec.model_io import CodecModel
  import jax
  other = CodecModel.from_params(jax.tree.map(lambda a: a * 1.001, tiny_params), tiny_cfg)
  with pytest.raises(UserError, match="made by model"):
    api.decompress(other, data)


def test_bitstream_header_round_trip():
  b = bitstream.Bitstream(b"12345678", 7, 9, (b"ab", b"", b"xyz"))
  assert bitstream.unpack(bitstream.pack(b)) == b


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(512, 768), (768, 512)])
def test_kodak_sizes(tiny_model, shape):
  img = (np.random.default_rng(1).random(shape + (3,)) * 255).astype(np.uint8)
  data, info = api.compress(tiny_model, img)
  out = api.decompress(tiny_model, data)
  assert out.shape == shape + (3,) and (info["height"], info["width"]) == shape
  np.testing.assert_array_equal(out, api.reconstruct(tiny_model, img[None])[0][0])


def test_pipelined_codec_equals_the_stage_by_stage_run(tiny_model, photo):
  """The family's compress dispatches every slice without waiting and range-codes while the device computes;
  waiting after every stage (`timings`, as benchmarks/codec_speed.py does) gives the same bytes, bits and image."""
  fam, d = tiny_model.family, tiny_model.cfg.text_dim
  x = api.pad_images(photo[None], fam.pad).astype(np.float32) / 255.0
  text = np.linspace(-1, 1, d, dtype=np.float32)[None]
  enc_t, dec_t = {}, {}
  streams, bits = fam.compress(tiny_model, x, text)
  assert (streams, bits) == fam.compress(tiny_model, x, text, timings=enc_t)
  assert set(enc_t) == {"g_a + h_a", "h_s", "slice transforms", "range coder"}
  hp, wp = x.shape[1:3]
  x_hat, y_hat = fam.decompress(tiny_model, streams[0], hp, wp)
  x_hat2, y_hat2 = fam.decompress(tiny_model, streams[0], hp, wp, timings=dec_t)
  np.testing.assert_array_equal(np.asarray(x_hat), np.asarray(x_hat2))
  np.testing.assert_array_equal(np.asarray(y_hat), np.asarray(y_hat2))
  assert set(dec_t) == {"range coder", "h_s", "slice transforms", "g_s"}
  assert all(wall > 0 and cpu >= 0 for wall, cpu in {**enc_t, **dec_t}.values())


def test_non_finite_latents_are_a_user_error(tiny_model, photo):
  import jax
  from jaxsemic.codec.model_io import CodecModel
  params = jax.tree.map(np.asarray, tiny_model.params)
  params["g_a"]["out"]["conv"]["bias"] = np.full_like(params["g_a"]["out"]["conv"]["bias"], np.nan)
  broken = CodecModel(tiny_model.cfg, params, tiny_model.tables, tiny_model.model_id)
  with pytest.raises(UserError, match="non-finite latents"):
    api.compress(broken, photo)
