"""Zoo models through the shared codec: .jsc round trips, serial context decoding, import-compressai CLI."""

import functools


import jax.numpy as jnp
import numpy as np
import pytest

from jaxsemic import cli
from jaxsemic.codec import api, bitstream
from jaxsemic.codec.model_io import CodecModel, load_model
from jaxsemic.errors import UserError
from test_zoo_parity import load_fixture


@functools.lru_cache(maxsize=None)
def model(name):
  _, ref, cfg, params = load_fixture(name)
  return CodecModel.from_params(params, cfg), ref["image"]


@pytest.mark.parametrize("name", ["bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean"])
def test_round_trip_equals_forward(name):
  """Without a context model the decoder's y_hat is the forward pass's round(y - mu) + mu, bit for bit."""
  m, image = model(name)
  data, info = api.compress(m, image)
  img, y_hat = api.decompress(m, data, return_latents=True)
  rec, out = api.reconstruct(m, image[None])
  np.testing.assert_array_equal(y_hat, np.asarray(out["y_hat"]))
  np.testing.assert_array_equal(img, rec[0])
  assert info["bytes"] == len(data) and len(bitstream.unpack(data).streams) == (1 if "factorized" in name else 2)
  # Real size close to the model's estimate: tables and stream framing are the only gap.
  assert abs(info["bpp"] - info["estimated_bpp"]) * image.shape[0] * image.shape[1] < 0.03 * len(data) * 8 + 400


def _context_fixed_point(m, y_hat, image):
  """round(y - mu) + mu with mu, sigma from the parallel (masked-conv) pass over the decoded y_hat."""
  v = {"params": m.params}
  x = jnp.asarray(image[None], jnp.float32) / 255.0
  y = m.module.apply(v, x, method="analysis")
  z = m.module.apply(v, y, method="hyper_analysis")
  med = m.params["entropy_bottleneck"]["quantiles"][:, 0, 1]
  hyper = m.module.apply(v, jnp.round(z - med) + med, method="hyper_synthesis")
  _, means = m.module.apply(v, hyper, jnp.asarray(y_hat), method="context_params")
  return np.asarray(jnp.round(y - means) + means)


@pytest.mark.parametrize("name,shape", [("mbt2018", None),
                                        pytest.param("cheng2020-attn", (33, 70), marks=pytest.mark.slow)])
def test_context_model_serial_round_trip(name, shape):
  """The scan decoder reproduces the encoder's latents: y_hat is the fixed point of the causal context model."""
  m, image = model(name)
  if shape is not None:
    image = np.ascontiguousarray(np.resize(image, shape + (3,)))
  data, info = api.compress(m, image)
  img, y_hat = api.decompress(m, data, return_latents=True)
  assert img.shape == image.shape and img.dtype == np.uint8
  padded = np.pad(image, ((0, -image.shape[0] % 64), (0, -image.shape[1] % 64), (0, 0)), mode="edge")
  np.testing.assert_allclose(y_hat, _context_fixed_point(m, y_hat, padded), atol=1e-4, rtol=0)
  assert np.abs(y_hat - np.round(y_hat)).max() > 0.01  # means are non-zero: the context really is used
  synth = np.asarray(m.module.apply({"params": m.params}, jnp.asarray(y_hat), method="synthesis"))
  expect = np.round(np.clip(synth[0, :image.shape[0], :image.shape[1]], 0, 1) * 255).astype(np.uint8)
  np.testing.assert_array_equal(img, expect)
  assert info["estimated_bpp"] > 0 and info["bytes"] == len(data)


def test_corrupt_context_payload_is_a_user_error():
  m, image = model("mbt2018")
  data, _ = api.compress(m, image)
  bs = bitstream.unpack(data)
  bad = bitstream.pack(bitstream.Bitstream(bs.model_id, bs.height, bs.width, (bs.streams[0], b"\x01\x02\x03")))
  with pytest.raises(UserError, match="cannot be decoded|payload"):
    api.decompress(m, bad)
  short = bitstream.pack(bitstream.Bitstream(bs.model_id, bs.height, bs.width, bs.streams[:1]))
  with pytest.raises(UserError, match="sub-streams"):
    api.decompress(m, short)


def test_import_compressai_cli(tmp_path, capsys):
  """`import-compressai` on a .pth.tar, then compress / decompress with the model directory."""
  torch = pytest.importorskip("torch")
  state, ref, _, _ = load_fixture("bmshj2018-hyperprior")
  ckpt = tmp_path / "ckpt.pth.tar"
  torch.save({"state_dict": {f"module.{k}": torch.from_numpy(v) for k, v in state.items()}}, ckpt)
  out = tmp_path / "model"
  assert cli.main(["import-compressai", str(ckpt), "--arch", "bmshj2018-hyperprior", "--out", str(out)]) == 0
  assert cli.main(["import-compressai", str(ckpt), "--arch", "bmshj2018-hyperprior", "--out", str(out)]) == 1
  assert cli.main(["import-compressai", str(ckpt), "--arch", "cheng2020-anchor", "--out", str(tmp_path / "x")]) == 1
  assert "not a CompressAI cheng2020-anchor state dict" in capsys.readouterr().err
  loaded = load_model(str(out))
  mem, image = model("bmshj2018-hyperprior")
  assert loaded.model_id == mem.model_id
  from PIL import Image
  Image.fromarray(image).save(tmp_path / "in.png")
  jsc, png = tmp_path / "a.jsc", tmp_path / "a.png"
  assert cli.main(["compress", str(tmp_path / "in.png"), str(jsc), "--model", str(out)]) == 0
  assert cli.main(["decompress", str(jsc), str(png), "--model", str(out)]) == 0
  np.testing.assert_array_equal(np.asarray(Image.open(png)), api.reconstruct(mem, image[None])[0][0])
