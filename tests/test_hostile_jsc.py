"""Hostile `.jsc` files (issue 15): every decoding failure is a one-line UserError, sizes are checked first."""

import dataclasses
import time

import numpy as np
import pytest

from jaxsemic.codec import api, bitstream
from jaxsemic.entropy import coder
from jaxsemic.errors import UserError


def _with(data: bytes, **changes) -> bytes:
  """The .jsc `data` with header fields or streams replaced, CRC recomputed (what the parser really sees)."""
  return bitstream.pack(dataclasses.replace(bitstream.unpack(data), **changes))


@pytest.fixture(scope="module")
def jsc(tiny_model, photo):
  return api.compress(tiny_model, photo)[0]


def test_invalid_range_coded_data_is_a_stream_error_not_an_assertion(tiny_model):
  data = np.random.default_rng(0).integers(0, 256, 16, dtype=np.uint8).tobytes()  # constriction asserts on it
  with pytest.raises(coder.StreamError, match="invalid range-coded data"):
    tiny_model.z_coder.decode(coder.new_decoder(data), np.zeros(2000, np.int32))
  with pytest.raises(coder.StreamError, match="multiple of 4"):
    coder.new_decoder(b"abc")


def test_reserved_flags_must_be_zero(tiny_model, jsc):
  with pytest.raises(UserError, match="reserved flag bits"):
    api.decompress(tiny_model, _with(jsc, flags=0x80))


@pytest.mark.parametrize("side", [4096, 8192, 65536])
def test_declared_size_larger_than_the_streams_is_refused_in_milliseconds(tiny_model, jsc, side):
  empty = _with(jsc, height=side, width=side, streams=(b"", b""))
  assert len(empty) == 35
  small = _with(jsc, height=side, width=side)  # the 40x100 image's real streams
  for data in (empty, small):
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="needs at least|over the limit"):
      api.decompress(tiny_model, data)
    assert time.perf_counter() - t0 < 0.5


def test_max_pixels_budget(tiny_model, jsc):
  h, w = bitstream.unpack(jsc).height, bitstream.unpack(jsc).width
  with pytest.raises(UserError, match="over the limit of 3999"):
    api.decompress(tiny_model, jsc, max_pixels=3999)
  assert api.decompress(tiny_model, jsc, max_pixels=h * w).shape == (h, w, 3)
  assert api.MAX_PIXELS >= 50_000_000


def test_size_bound_is_below_real_streams(tiny_model, photo):
  """The bound never refuses a real file: flat and noisy images, small and large."""
  rng = np.random.default_rng(1)
  for img in (np.full((130, 70, 3), 128, np.uint8), rng.integers(0, 256, (64, 192, 3), dtype=np.uint8), photo):
    data, _ = api.compress(tiny_model, img)
    bs = bitstream.unpack(data)
    hp, wp = api.padded_size(bs.height, bs.width)
    for stream, bits in zip(bs.streams, api.min_stream_bits(tiny_model, hp, wp)):
      assert 8 * len(stream) >= bits
    assert api.decompress(tiny_model, data).shape == img.shape


def test_non_finite_decoded_latents_are_an_error(tiny_model, jsc):
  nan = np.full((1, 64, 128, 3), np.nan, np.float32)
  model = dataclasses.replace(tiny_model)
  model.family = dataclasses.replace(tiny_model.family, decompress=lambda *a: (nan, nan))
  with pytest.raises(UserError, match="non-finite"):
    api.decompress(model, jsc)


def test_output_never_an_input_or_a_directory(tmp_path):
  from jaxsemic import io
  img = tmp_path / "a.png"
  img.write_bytes(b"image")
  link = tmp_path / "link.png"
  link.symlink_to(img)
  for out in (img, link, tmp_path / "." / "a.png"):
    with pytest.raises(UserError, match="is the input file"):
      io.check_output(out, True, inputs=(img,))
  with pytest.raises(UserError, match="is a directory"):
    io.check_output(tmp_path, True)
  io.check_output(tmp_path / "b.png", False, inputs=(img,))


def test_cli_refuses_to_write_onto_its_input_even_with_force(tmp_path, tiny_model_dir, jsc):
  from conftest import run_cli
  from PIL import Image
  img = tmp_path / "x.png"
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
  before = img.read_bytes()
  f = tmp_path / "x.jsc"
  f.write_bytes(jsc)
  for args in (("compress", img, img), ("decompress", f, f), ("compress", img, tmp_path)):
    r = run_cli(*args, "--force", "--model", tiny_model_dir)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "is the input file" in r.stderr or "is a directory" in r.stderr
  assert img.read_bytes() == before and f.read_bytes() == jsc
  r = run_cli("decompress", f, tmp_path / "y.png", "--model", tiny_model_dir, "--max-pixels", "100")
  assert r.returncode != 0 and "over the limit of 100" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_stream_lengths_moved_between_streams_are_refused(tiny_model, jsc):
  """Each sub-stream must be read to its end: a length moved to a neighbour (or swapped) is an error, not an image."""
  bs = bitstream.unpack(jsc)
  (z, y), body = bs.streams, b"".join(bs.streams)
  for cut in (len(z) - 8, len(z) - 4, len(z) + 4, len(z) + 8, len(y)):
    with pytest.raises(UserError, match="data left after its last symbol|cannot be decoded"):
      api.decompress(tiny_model, _with(jsc, streams=(body[:cut], body[cut:])))
  with pytest.raises(UserError, match="data left after its last symbol"):
    api.decompress(tiny_model, _with(jsc, streams=(z, y + b"\x01\x02\x03\x04" * 2)))  # two words too many
  # constriction cannot tell one trailing word from its own flush (`maybe_exhausted`): that much slack is allowed
  api.decompress(tiny_model, _with(jsc, streams=(z, y + b"\x01\x02\x03\x04")))
