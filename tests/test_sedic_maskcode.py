"""SEDIC mask coder: the latent-grid rule, exact round trips, pinned streams, rate, corrupt streams, baselines."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from jaxsemic.errors import UserError
from jaxsemic.sedic import cocomasks, maskcode


def _disc(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
  yy, xx = np.mgrid[:h, :w]
  return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def _objects() -> np.ndarray:
  """Three overlapping blob masks on the 64x96 grid (a person-like blob, a disc, a rectangle)."""
  body = _disc(64, 96, 40, 30, 14) | _disc(64, 96, 20, 30, 7) | ((np.mgrid[:64, :96][0] > 40) & (abs(np.mgrid[:64, :96][1] - 30) < 6))
  rect = np.zeros((64, 96), bool)
  rect[10:35, 60:90] = True
  return np.stack([body, _disc(64, 96, 45, 70, 12), rect])


def _roundtrip(masks: np.ndarray) -> bytes:
  data = maskcode.encode_masks(masks)
  out = maskcode.decode_masks(data, *masks.shape)
  assert out.dtype == bool and out.shape == masks.shape and np.array_equal(out, masks)
  return data


def test_latent_grid_matches_codec_padding():
  from jaxsemic.codec.api import padded_size  # noqa: PLC0415 - the codec's own rule
  for h, w in ((1, 1), (512, 768), (768, 512), (100, 300), (65, 64)):
    hp, wp = padded_size(h, w)
    assert maskcode.latent_hw(h, w) == (hp // 8, wp // 8)


def test_to_latent_grid_area_rule_and_edge_padding():
  rng = np.random.default_rng(0)
  m = rng.random((70, 100)) < 0.5
  got = maskcode.to_latent_grid(m, (16, 16))
  padded = np.pad(m, ((0, 128 - 70), (0, 128 - 100)), mode="edge")
  want = np.array([[padded[8 * i:8 * i + 8, 8 * j:8 * j + 8].sum() >= 32 for j in range(16)] for i in range(16)])
  assert np.array_equal(got, want)
  block = np.zeros((64, 64), bool)
  block[:4, :8] = True  # exactly half of the first 8x8 block
  assert maskcode.to_latent_grid(block, (8, 8))[0, 0]
  block[3, 7] = False
  assert not maskcode.to_latent_grid(block, (8, 8))[0, 0]
  with pytest.raises(UserError, match="latent grid"):
    maskcode.to_latent_grid(m, (9, 13))
  with pytest.raises(UserError, match="2-D"):
    maskcode.to_latent_grid(np.zeros((2, 8, 8)), (1, 1))


def test_resize_and_read_mask(tmp_path):
  m = np.zeros((10, 20), bool)
  m[2:6, 5:15] = True
  assert np.array_equal(maskcode.resize_mask(m, (20, 40))[4:12, 10:30], np.ones((8, 20), bool))
  assert maskcode.resize_mask(m, (10, 20)) is m
  Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / "a.png")
  Image.fromarray(m.astype(np.uint8)).save(tmp_path / "b.png")  # 0/1 mask
  assert np.array_equal(maskcode.read_mask(tmp_path / "a.png"), m)
  assert np.array_equal(maskcode.read_mask(tmp_path / "b.png"), m)
  masks = maskcode.SidecarMasks([tmp_path / "a.png", tmp_path / "b.png"]).segment("img.png", ["x"], (20, 40))
  assert masks.shape == (1, 20, 40) and np.array_equal(masks[0], maskcode.resize_mask(m, (20, 40)))
  assert maskcode.SidecarMasks([]).segment("img.png", [], (4, 4)).shape == (0, 4, 4)
  with pytest.raises(UserError, match="3 objects but 2 mask files"):
    maskcode.SidecarMasks([tmp_path / "a.png", tmp_path / "b.png"]).segment("img.png", "xyz", (20, 40))
  with pytest.raises(UserError, match="does not exist"):
    maskcode.read_mask(tmp_path / "c.png")
  (tmp_path / "d.png").write_bytes(b"not a png")
  with pytest.raises(UserError, match="not a readable image"):
    maskcode.read_mask(tmp_path / "d.png")


def test_contexts_match_the_template():
  rng = np.random.default_rng(1)
  masks = rng.random((2, 6, 7)) < 0.5
  ctx = maskcode.contexts(masks)
  taps = [(-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (0, -2), (0, -1)]
  for j in range(2):
    for y in range(6):
      for x in range(7):
        want = sum(int(masks[j, y + dy, x + dx]) << b for b, (dy, dx) in enumerate(taps)
                   if 0 <= y + dy < 6 and 0 <= x + dx < 7)
        want |= int(j > 0 and masks[0, y, x]) << 10
        assert ctx[j, y, x] == want


@pytest.mark.parametrize("shape", [(0, 64, 96), (1, 1, 1), (3, 1, 1), (2, 7, 13), (1, 64, 96), (3, 64, 96), (1, 0, 5)])
def test_roundtrip_shapes_and_extremes(shape):
  rng = np.random.default_rng(sum(shape))
  _roundtrip(np.zeros(shape, bool))
  _roundtrip(np.ones(shape, bool))
  _roundtrip(rng.random(shape) < 0.5)
  _roundtrip(rng.random(shape) < 0.02)


def test_roundtrip_objects_and_golden_stream():
  masks = _objects()
  data = _roundtrip(masks)
  assert maskcode.prior_digest(maskcode.load_prior()).startswith(maskcode.PRIOR_DIGEST)
  assert hashlib.sha256(data).hexdigest()[:16] == GOLDEN[0]
  data = _roundtrip(np.stack([np.eye(7, 13, dtype=bool), np.ones((7, 13), bool)]))
  assert hashlib.sha256(data).hexdigest()[:16] == GOLDEN[1]


GOLDEN = ("edb496cc4d1b77f4", "9e06558950658967")


def test_rate_against_rle_png_and_ideal():
  masks = _objects()
  real = 8 * len(_roundtrip(masks))
  ideal = maskcode.mask_bits(masks)
  assert ideal <= real <= 1.02 * ideal + 16
  rle = sum(maskcode.rle_bits(m) for m in masks)
  assert real <= 0.5 * rle
  assert rle < sum(maskcode.png_bits(m, payload=True) for m in masks) < sum(maskcode.png_bits(m) for m in masks)
  assert rle < masks.size
  # the shipped COCO prior helps against the plain KT estimator on blob-like masks
  assert ideal < maskcode.mask_bits(masks, maskcode.kt_prior())


def test_rle_bits_by_hand():
  # one run of 16 zeros: Exp-Golomb order 3 codes 16 in 6 bits, + 3 bits for the order
  assert maskcode.rle_bits(np.zeros((4, 4), bool)) == 9
  # runs 0 (leading ones), then ones: first value 0, then 15 (16 - 1) -> best order 0..7
  ones = maskcode.rle_bits(np.ones((4, 4), bool))
  assert ones == 3 + min(maskcode._exp_golomb_bits(np.array([0, 15]), k) for k in range(8))
  assert maskcode.rle_bits(np.zeros((0, 3), bool)) == 0


def test_truncated_and_corrupt_streams():
  masks = _objects()[:2]
  data = _roundtrip(masks)
  outcomes = []
  cases = [data[:cut] for cut in (0, 1, len(data) // 2, len(data) - 1)]
  cases += [data[:i] + bytes([data[i] ^ f]) + data[i + 1:] for i in range(0, len(data), 3) for f in (0x01, 0x80)]
  cases.append(data + b"\0")
  for bad in cases:
    try:
      outcomes.append(maskcode.decode_masks(bad, *masks.shape))
    except UserError as e:
      assert "mask stream" in str(e)
      outcomes.append(None)
  assert all(o is None or not np.array_equal(o, masks) for o in outcomes)
  assert sum(o is None for o in outcomes) >= 0.5 * len(outcomes)  # 20 of 27 here


def test_bad_arguments():
  with pytest.raises(UserError, match="J must be"):
    maskcode.decode_masks(b"", -1, 4, 4)
  with pytest.raises(UserError, match="exceed the limits"):
    maskcode.decode_masks(b"", 3, 1 << 12, 1 << 11)
  with pytest.raises(UserError, match="\\[J, h, w\\]"):
    maskcode.encode_masks(np.zeros((4, 4), bool))


def test_coco_polygons_are_stretched():
  ann = {"images": [{"id": 5, "height": 100, "width": 200}],
         "annotations": [
           {"id": 1, "image_id": 5, "iscrowd": 0, "area": 100.0, "segmentation": [[0, 0, 100, 0, 100, 50, 0, 50]]},
           {"id": 2, "image_id": 5, "iscrowd": 0, "area": 900.0, "segmentation": [[100, 50, 200, 50, 200, 100, 100, 100]]},
           {"id": 3, "image_id": 5, "iscrowd": 1, "area": 5000.0, "segmentation": {"counts": [1], "size": [100, 200]}},
         ]}
  masks = cocomasks.instance_masks(ann, (50, 50), largest=3)[5]
  assert masks.shape == (2, 50, 50)
  assert masks[0, 30:, 30:].all() and not masks[0, :20, :20].any()  # the largest (bottom right) first
  assert masks[1, :20, :20].all() and not masks[1, 30:, 30:].any()
