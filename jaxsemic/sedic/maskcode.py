"""Lossless coding of SEDIC object masks on the decoder's latent grid (paper Sec. III-A, eq. 4).

The decoder uses a mask M_j only on the latent grid (the eq. 4 blend) and on coarser attention grids resized
from it (eq. 2), so masks are reduced to that grid first (`to_latent_grid`: the image padded to a multiple of 64
by edge replication as in `.jsc`, then an 8×8 block is in the mask when at least half of it is) and coded
exactly there: lossless for the decoder, 4-8× cheaper than full resolution (`../shared/notes/sedic-design.md` §3).

Coder: a context-adaptive binary arithmetic coder (JBIG, ITU-T T.82, 3-line 10-pixel template) with an 11th
context bit, "inside an earlier mask of this image". Pixels are coded mask after mask in raster order; pixels
outside the grid read as 0. Per context, counts (n0, n1) of this stream give
  P(1) = (S·n1 + a1) / (S·(n0 + n1) + a0 + a1),
with integer pseudo-counts (a0, a1) from a prior learned on COCO instance masks (`mask_prior_coco.npz`, built by
`tools/train_mask_prior.py`; without it a0 = a1 = S/2, the KT estimator). Integer weights go to `rangecode`, so
encoder and decoder agree exactly on any machine. The prior is part of the `.sedic` format version.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from jaxsemic.errors import UserError
from jaxsemic.sedic import rangecode

PAD = 64  # images are padded to multiples of 64 before coding (as jaxsemic.codec.api.padded_size)
FACTOR = 8  # VAE latent stride: the decoder's mask grid is the padded image / 8
SCALE = 256  # fixed-point unit of the pseudo-counts: a count of 1 is SCALE
CONTEXT_BITS = 11
MAX_MASK_PIXELS = 1 << 20  # a 1024x1024 grid, images up to 8192x8192: bounds decode time (~3 s a mask here)
MAX_MASKS = 16
PRIOR_FILE = "mask_prior_coco.npz"
PRIOR_DIGEST = "84b1655497300386"  # first 16 hex digits of `prior_digest` of the shipped prior
_TOTB = rangecode.row_total(2)


def latent_hw(height: int, width: int) -> tuple[int, int]:
  """The decoder's mask grid for an image: its size padded to multiples of 64, divided by 8."""
  return -(-height // PAD) * (PAD // FACTOR), -(-width // PAD) * (PAD // FACTOR)


def to_latent_grid(mask: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
  """bool[h, w] from an image-size mask: edge-replicate to the padded size, keep 8×8 blocks ≥ half set."""
  mask = np.asarray(mask)
  if mask.ndim != 2:
    raise UserError(f"a mask must be a 2-D array, got shape {mask.shape}")
  hh, ww = latent_hw(*mask.shape)
  if (hh, ww) != tuple(grid_hw):
    raise UserError(f"a {mask.shape[1]}x{mask.shape[0]} mask has latent grid {ww}x{hh}, not {grid_hw[1]}x{grid_hw[0]}")
  m = np.pad(mask.astype(bool), ((0, hh * FACTOR - mask.shape[0]), (0, ww * FACTOR - mask.shape[1])), mode="edge")
  blocks = m.reshape(hh, FACTOR, ww, FACTOR).sum(axis=(1, 3), dtype=np.int64)
  return blocks * 2 >= FACTOR * FACTOR


def resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  """A boolean mask resized to hw (nearest neighbour), e.g. a segmenter's mask to the image size."""
  mask = np.asarray(mask, bool)
  if mask.shape == tuple(hw):
    return mask
  img = Image.fromarray(mask.astype(np.uint8) * 255).resize((hw[1], hw[0]), Image.NEAREST)
  return np.asarray(img) >= 128


def read_mask(path: str | os.PathLike) -> np.ndarray:
  """A mask image (any mode) as bool[H, W]: nonzero for 0/1 images, ≥ 128 otherwise."""
  path = Path(path)
  if not path.is_file():
    raise UserError(f"mask file {path} does not exist")
  try:
    with Image.open(path) as img:
      a = np.asarray(img.convert("L"))
  except (OSError, ValueError) as e:
    raise UserError(f"{path} is not a readable image") from e
  return a >= (128 if a.max() > 1 else 1)


class Segmenter(Protocol):
  """Anything that gives one mask per object at the image size (Grounding DINO + SAM, or sidecar files)."""

  def segment(self, image: str | os.PathLike, names: Sequence[str], hw: tuple[int, int]) -> np.ndarray:
    ...


class SidecarMasks:
  """Masks written beforehand: one image file per object, in object order, resized to the image."""

  def __init__(self, paths: Sequence[str | os.PathLike]):
    self.paths = [Path(p) for p in paths]

  def segment(self, image: str | os.PathLike, names: Sequence[str], hw: tuple[int, int]) -> np.ndarray:
    """bool[J, H, W] for the first J = len(names) files; UserError if there are fewer files than objects."""
    if len(self.paths) < len(names):
      raise UserError(f"{len(names)} objects but {len(self.paths)} mask files")
    masks = [resize_mask(read_mask(p), hw) for p in self.paths[:len(names)]]
    return np.stack(masks) if masks else np.zeros((0, *hw), bool)


# ---- the context coder ---------------------------------------------------------------------------------------


def contexts(masks: np.ndarray) -> np.ndarray:
  """int64[J, h, w] context of every pixel (template bits of the same mask, then the earlier-masks bit)."""
  masks = np.asarray(masks, bool)
  j, h, w = masks.shape
  p = np.zeros((j, h + 2, w + 4), np.int64)
  p[:, 2:, 2:-2] = masks

  def at(dy: int, dx: int) -> np.ndarray:
    return p[:, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]

  taps = [(-2, -1), (-2, 0), (-2, 1), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (0, -2), (0, -1)]
  ctx = np.zeros((j, h, w), np.int64)
  for bit, (dy, dx) in enumerate(taps):
    ctx |= at(dy, dx) << bit
  earlier = np.cumsum(masks, axis=0) - masks > 0
  return ctx | (earlier.astype(np.int64) << len(taps))


@functools.lru_cache(maxsize=None)
def load_prior() -> np.ndarray:
  """The shipped pseudo-counts int64[2**11, 2] (a0, a1) in units of 1/SCALE; UserError if missing or altered."""
  path = Path(__file__).with_name(PRIOR_FILE)
  if not path.is_file():
    raise UserError(f"{PRIOR_FILE} is missing from the installed package; reinstall jaxsemic")
  with np.load(path) as z:
    prior = np.asarray(z["prior"], np.int64)
  if prior.shape != (1 << CONTEXT_BITS, 2) or (prior < 1).any():
    raise UserError(f"{PRIOR_FILE} in the installed package is malformed; reinstall jaxsemic")
  if not prior_digest(prior).startswith(PRIOR_DIGEST):
    raise UserError(f"{PRIOR_FILE} does not match its pinned digest; reinstall jaxsemic")
  return prior


def kt_prior() -> np.ndarray:
  """The Krichevsky-Trofimov estimator's pseudo-counts (1/2, 1/2) for every context."""
  return np.full((1 << CONTEXT_BITS, 2), SCALE // 2, np.int64)


def prior_digest(prior: np.ndarray) -> str:
  """SHA-256 (hex) of the pseudo-counts as little-endian int64."""
  return hashlib.sha256(np.ascontiguousarray(prior, "<i8").tobytes()).hexdigest()


class _Counts:
  """Adaptive per-context counts on top of a prior; `weight1` gives the integer weight of a 1."""

  def __init__(self, prior: np.ndarray):
    self.a0 = [int(v) for v in prior[:, 0]]
    self.a1 = [int(v) for v in prior[:, 1]]
    self.n0 = [0] * len(self.a0)
    self.n1 = [0] * len(self.a0)

  def weight1(self, c: int) -> int:
    n1 = self.n1[c]
    den = SCALE * (self.n0[c] + n1) + self.a0[c] + self.a1[c]
    return _TOTB * (SCALE * n1 + self.a1[c]) // den

  def update(self, c: int, bit: int) -> None:
    if bit:
      self.n1[c] += 1
    else:
      self.n0[c] += 1


def _check_shape(j: int, h: int, w: int) -> None:
  for name, v in (("J", j), ("height", h), ("width", w)):
    if not isinstance(v, (int, np.integer)) or v < 0:
      raise UserError(f"mask {name} must be a non-negative integer, got {v!r}")
  if j > MAX_MASKS or h * w > MAX_MASK_PIXELS:
    raise UserError(f"{j} masks of {w}x{h} exceed the limits ({MAX_MASKS} masks, {MAX_MASK_PIXELS} pixels each)")


def _rows(masks: np.ndarray, prior: np.ndarray) -> np.ndarray:
  """Weight rows [J·h·w, 2] the coder uses for every pixel, in coding order."""
  ctx = contexts(masks).ravel().tolist()
  bits = np.asarray(masks, bool).ravel().tolist()
  counts = _Counts(prior)
  w1 = np.zeros(len(ctx), np.int64)
  for i, (c, b) in enumerate(zip(ctx, bits)):
    w1[i] = counts.weight1(c)
    counts.update(c, b)
  return np.stack([_TOTB - w1, w1], axis=1)


def encode_masks(masks: np.ndarray, prior: np.ndarray | None = None) -> bytes:
  """One range-coded stream for bool[J, h, w] masks."""
  masks = np.asarray(masks)
  if masks.ndim != 3:
    raise UserError(f"masks must be a [J, h, w] array, got shape {masks.shape}")
  _check_shape(*masks.shape)
  masks = masks.astype(bool)
  prior = load_prior() if prior is None else prior
  return rangecode.encode_rows(masks.ravel().astype(np.int32), _rows(masks, prior))


def mask_bits(masks: np.ndarray, prior: np.ndarray | None = None) -> float:
  """Ideal code length of `encode_masks(masks)` in bits."""
  masks = np.asarray(masks, bool)
  prior = load_prior() if prior is None else prior
  return rangecode.ideal_bits(masks.ravel(), _rows(masks, prior))


def decode_masks(data: bytes, j: int, h: int, w: int, prior: np.ndarray | None = None) -> np.ndarray:
  """Inverse of `encode_masks`: bool[J, h, w]; UserError if the stream is corrupt or truncated."""
  _check_shape(j, h, w)
  prior = load_prior() if prior is None else prior
  out = np.zeros((j, h + 2, w + 4), np.int64)
  grid = out.tolist()
  counts = _Counts(prior)
  decoder = rangecode.new_decoder(data)
  earlier = [[0] * w for _ in range(h)]
  for m in range(j):
    g = grid[m]
    for y in range(h):
      r2, r1, r0, e = g[y], g[y + 1], g[y + 2], earlier[y]
      for x in range(w):
        c = (r2[x + 1] | r2[x + 2] << 1 | r2[x + 3] << 2 | r1[x] << 3 | r1[x + 1] << 4 | r1[x + 2] << 5
             | r1[x + 3] << 6 | r1[x + 4] << 7 | r0[x] << 8 | r0[x + 1] << 9 | e[x] << 10)
        w1 = counts.weight1(c)
        bit = rangecode.decode_one(decoder, (_TOTB - w1, w1), "mask")
        counts.update(c, bit)
        r0[x + 2] = bit
    for y in range(h):
      for x in range(w):
        earlier[y][x] |= grid[m][y + 2][x + 2]
  masks = np.array(grid, np.int64)[:, 2:, 2:w + 2].astype(bool) if j else np.zeros((0, h, w), bool)
  if encode_masks(masks, prior) != bytes(data):
    raise UserError("mask stream is corrupt or truncated (it is not the encoding of what it decodes to)")
  return masks


# ---- baselines ---------------------------------------------------------------------------------------------


def _exp_golomb_bits(v: np.ndarray, k: int) -> int:
  """Total Exp-Golomb code length of order k for non-negative integers."""
  v = np.asarray(v, np.int64)
  return int(np.sum(2 * np.floor(np.log2((v >> k) + 1)).astype(np.int64) + 1 + k))


def rle_bits(mask: np.ndarray) -> int:
  """Run-length code of one mask in raster order: alternating runs starting with 0s (the first may be empty and
  is coded as is, later runs as length − 1), Exp-Golomb of the best order k ≤ 7 plus 3 bits to send k; the
  size is known to the decoder."""
  flat = np.asarray(mask, bool).ravel()
  if not flat.size:
    return 0
  change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
  runs = np.diff(np.concatenate([[0], change, [flat.size]]))
  values = np.concatenate([[0], runs - 1]) if flat[0] else np.concatenate([[runs[0]], runs[1:] - 1])
  return 3 + min(_exp_golomb_bits(values, k) for k in range(8))


def png_bits(mask: np.ndarray, payload: bool = False) -> int:
  """Bits of a 1-bit PNG of the mask (PIL, optimize): the whole file, or only its IDAT data (`payload`)."""
  buf = io.BytesIO()
  Image.fromarray(np.asarray(mask, bool)).save(buf, format="PNG", optimize=True)
  data = buf.getvalue()
  if not payload:
    return 8 * len(data)
  total, pos = 0, 8
  while pos < len(data):
    length = int.from_bytes(data[pos:pos + 4], "big")
    if data[pos + 4:pos + 8] == b"IDAT":
      total += length
    pos += 12 + length
  return 8 * total
