"""Wavefront decoding of the context models: the schedule, and the same images as raster-order decoding."""

import numpy as np
import pytest

from jaxsemic.codec import api, bitstream
from jaxsemic.zoo import codec as zoo_codec
from jaxsemic.zoo.context_coding import schedule
from jaxsemic.zoo.mbt2018 import causal_mask
from test_zoo_codec import model

CONTEXT_MODELS = ["mbt2018", "cheng2020-anchor", "cheng2020-attn"]


@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (4, 1), (2, 2), (5, 7), (8, 12), (7, 30)])
def test_schedule_codes_each_position_once_after_its_context(h, w):
  rows, cols = schedule(h, w, "wavefront")
  assert rows.shape[0] == 3 * (h - 1) + w
  step = np.full((h, w), -1)
  for t in range(rows.shape[0]):
    for r, c in zip(rows[t], cols[t]):
      if r >= 0:
        assert step[r, c] == -1
        step[r, c] = t
  assert (step >= 0).all()
  k = causal_mask(5)[:, :, 0, 0]
  for r in range(h):
    for c in range(w):
      for dr, dc in zip(*np.nonzero(k)):  # every causal neighbour inside the grid comes at an earlier step
        rr, cc = r + dr - 2, c + dc - 2
        if 0 <= rr < h and 0 <= cc < w:
          assert step[rr, cc] < step[r, c]
  raster_rows, raster_cols = schedule(h, w, "raster")
  assert raster_rows.shape == (h * w, rows.shape[1])  # one position per step, in its diagonal's slot
  slot_w = {(r, c): j for t in range(rows.shape[0]) for j, (r, c) in enumerate(zip(rows[t], cols[t])) if r >= 0}
  order = [(r, c, j) for t in range(h * w) for j, (r, c) in enumerate(zip(raster_rows[t], raster_cols[t]))
           if r >= 0]
  assert [(r, c) for r, c, _ in order] == [(r, c) for r in range(h) for c in range(w)]
  assert all(slot_w[(r, c)] == j for r, c, j in order)


@pytest.mark.parametrize("name", CONTEXT_MODELS)
def test_wavefront_decodes_the_raster_decoders_image(name):
  """Coded diagonal by diagonal or position by position (same per-position program), y_hat and x_hat are equal
  bit for bit, every position gets the same symbol; only the order of the symbols in the y stream differs."""
  m, image = model(name)
  image = np.ascontiguousarray(np.resize(image, (100, 150, 3)))  # latents 8 x 12: up to 4 per diagonal
  data, _ = api.compress(m, image)
  bs = bitstream.unpack(data)
  assert bs.version == 3
  img_w, y_w = api.decompress(m, data, return_latents=True)
  x = api.pad_images(image[None]).astype(np.float32) / 255.0
  streams_r, _ = zoo_codec.context_streams(m, x, "raster")
  x_r, y_r = zoo_codec.context_decode(m, streams_r, *x.shape[1:3], "raster")
  x_w, y_w2 = zoo_codec.context_decode(m, bs.streams, *x.shape[1:3], "wavefront")
  np.testing.assert_array_equal(np.asarray(y_w2), np.asarray(y_r))
  np.testing.assert_array_equal(np.asarray(x_w), np.asarray(x_r))
  np.testing.assert_array_equal(y_w, np.asarray(y_r))
  np.testing.assert_array_equal(img_w, np.round(np.asarray(x_r)[0, :100, :150] * 255).astype(np.uint8))
  assert streams_r[0] == bs.streams[0] and streams_r[1] != bs.streams[1]  # same z; y in another order
  with pytest.raises(Exception):  # the orders are not interchangeable: a raster stream read as a wavefront
    np.testing.assert_array_equal(np.asarray(zoo_codec.context_decode(m, streams_r, *x.shape[1:3],
                                                                      "wavefront")[1]), np.asarray(y_r))


@pytest.mark.parametrize("name", CONTEXT_MODELS)
def test_entropy_parameters_as_rows_match_the_convs(name):
  """Version 3's coding step (entropy parameters as matrix products) equals version 2's (1x1 convs) up to float
  rounding, for every row of a batch."""
  m, _ = model(name)
  M = m.cfg.M
  rng = np.random.default_rng(0)
  hyper = rng.normal(size=(7, 2 * M)).astype(np.float32)
  windows = rng.normal(size=(7, 5, 5, M)).astype(np.float32)
  matrix = m.module.apply({"params": m.params}, method="context_matrix")
  rows, convs = (m.module.apply({"params": m.params}, hyper, windows, matrix, entropy_rows,
                                method="context_params_many") for entropy_rows in (True, False))
  for a, b in zip(rows, convs):
    assert a.shape == (7, M)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
