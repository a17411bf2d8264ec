"""compress / decompress for every registered family: padding, the `.jsc` container, cropping.

What happens between padded pixels and sub-streams is the family's (`model.family.compress` / `.decompress`,
`jaxsemic.family`); this module holds no model-specific code.
"""

from __future__ import annotations

import functools
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.codec import bitstream, tiling
from jaxsemic.codec.image_io import read_image  # noqa: F401  (re-exported: the API contract)
from jaxsemic.codec.model_io import CodecModel
from jaxsemic.entropy import coder
from jaxsemic.errors import UserError

PAD = 64  # the registered families downsample by 64 in total (g_a by 16, h_a by 4 more)
DECODE_ERRORS = (ValueError, RuntimeError, OverflowError, IndexError)  # what a corrupt payload raises
MAX_PIXELS = 64_000_000  # default decode budget: a 50 MP camera photo fits (`decompress --max-pixels`)


def padded_size(h: int, w: int, multiple: int = PAD) -> tuple[int, int]:
  return -(-h // multiple) * multiple, -(-w // multiple) * multiple


def pad_images(x: np.ndarray, multiple: int = PAD) -> np.ndarray:
  """Edge-replicates [B,H,W,C] up to multiples of `multiple` (cheaper to code than zeros)."""
  h, w = x.shape[1:3]
  hp, wp = padded_size(h, w, multiple)
  return np.pad(x, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)), mode="edge")


def _text_batch(model: CodecModel, text, batch: int) -> np.ndarray | None:
  """The text vectors [B,D] the encoder reads (None for models without text, which ignore `text`)."""
  dim = model.text_dim
  if dim == 0:
    return None
  if text is None:
    return np.zeros((batch, dim), np.float32)
  t = np.asarray(text, np.float32).reshape(batch, -1)
  if t.shape[1] != dim:
    raise UserError(f"text vector has dimension {t.shape[1]}, the model expects {dim}")
  return t


def compress_batch(model: CodecModel, images: np.ndarray, text=None, sharding=None
                   ) -> tuple[list[bytes], list[dict]]:
  """Compresses a batch of same-size uint8 images [B,H,W,3]; `sharding` places the batch on devices."""
  t0 = time.perf_counter()
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
    raise UserError(f"expected uint8 images [B,H,W,3], got {images.dtype} {images.shape}")
  b, h, w, _ = images.shape
  if not (0 < h <= bitstream.MAX_SIDE and 0 < w <= bitstream.MAX_SIDE):
    raise UserError(f"image size {w}x{h} is outside 1..{bitstream.MAX_SIDE}")
  x = pad_images(images, model.family.pad).astype(np.float32) / 255.0
  streams, bits = model.family.compress(model, x, _text_batch(model, text, b), sharding)
  seconds = time.perf_counter() - t0
  outs, infos = [], []
  for s, n_bits in zip(streams, bits):
    data = bitstream.pack(bitstream.Bitstream(model.model_id, h, w, tuple(s)))
    outs.append(data)
    infos.append({"bytes": len(data), "bpp": 8.0 * len(data) / (h * w), "estimated_bpp": n_bits / (h * w),
                  "height": h, "width": w, "seconds": seconds / b})
  return outs, infos


def _tiled_input(model: CodecModel, image: np.ndarray, text, tile: int):
  """(padded uint8 image, height, width, text [1, D] or None) for `codec.tiling`, after checking them."""
  if tile < 0 or tile % model.family.pad or tile > bitstream.MAX_SIDE:
    raise UserError(f"tile size {tile} must be 0 (no tiles) or a multiple of {model.family.pad} up to "
                    f"{bitstream.MAX_SIDE}")
  h, w, c = image.shape
  if image.dtype != np.uint8 or c != 3 or not (0 < h <= bitstream.MAX_SIDE and 0 < w <= bitstream.MAX_SIDE):
    raise UserError(f"expected a uint8 image [H,W,3] of sides 1..{bitstream.MAX_SIDE}, got {image.dtype} "
                    f"{image.shape}")
  text = _text_batch(model, None if text is None else np.asarray(text)[None], 1)
  return pad_images(image[None], model.family.pad)[0], h, w, text


def compress(model: CodecModel, image: np.ndarray, text=None, tile: int | None = None) -> tuple[bytes, dict]:
  """Compresses one uint8 [H,W,3] image (text: the semantic vector [D], or None).

  tile: side in pixels of the tiles a large image is coded in (`codec.tiling`); None picks
  `tiling.default_tile` (images up to 2048x2048 are coded whole), 0 never tiles.
  """
  image = np.asarray(image)
  if image.ndim != 3:
    raise UserError(f"expected a uint8 image [H,W,3], got shape {image.shape}")
  tile = tiling.default_tile(*image.shape[:2]) if tile is None else tile
  if tile:
    return tiling.compress(model, *_tiled_input(model, image, text, tile), tile)
  outs, infos = compress_batch(model, image[None], None if text is None else np.asarray(text)[None])
  return outs[0], infos[0]


def min_stream_bits(model: CodecModel, hp: int, wp: int) -> tuple[float, ...]:
  """Lower bounds of each sub-stream's size in bits for a padded size, from the tables' cheapest symbols.

  Every family codes sub-stream 0 with the per-channel `z` tables at every position of a grid at least as dense
  as hp/pad x wp/pad, and any later sub-stream at least one `y` symbol per such position; no symbol costs less
  than -log2(its table's largest probability). Halved for the coder's re-quantisation, less 64 bits of state.
  """
  positions = (hp // model.family.pad) * (wp // model.family.pad)
  per_position = [float(model.z_coder.min_bits().sum())] + [float(model.y_coder.min_bits().min())] * (
      model.family.num_streams - 1)
  return tuple(max(0.0, 0.5 * positions * b - 64.0) for b in per_position)


def check_declared_size(model: CodecModel, bs: bitstream.Bitstream, max_pixels: int = MAX_PIXELS) -> None:
  """Refuses, before any allocation, a header size over the pixel budget or too large for its stream lengths."""
  if bs.height * bs.width > max_pixels:
    raise UserError(f".jsc declares a {bs.width}x{bs.height} image ({bs.width * bs.height} pixels), over the "
                    f"limit of {max_pixels} (--max-pixels)")
  hp, wp = padded_size(bs.height, bs.width, model.family.pad)
  shapes = tiling.tile_shapes(hp, wp, bs.tile) if bs.tile else [(hp, wp)]
  n, bounds = model.family.num_streams, {}
  for k, shape in enumerate(shapes):
    if shape not in bounds:
      bounds[shape] = min_stream_bits(model, *shape)
    for i, (stream, bits) in enumerate(zip(bs.streams[k * n:(k + 1) * n], bounds[shape])):
      if 8 * len(stream) < bits or not stream:
        where = f" of tile {k}" if bs.tile else ""
        raise UserError(f".jsc is corrupt: sub-stream {i}{where} has {len(stream)} bytes, a {bs.width}x{bs.height} "
                        f"image needs at least {max(4, int(bits // 8))}")


def decompress(model: CodecModel, data: bytes, return_latents: bool = False, max_pixels: int = MAX_PIXELS):
  """Decodes a .jsc byte string to uint8 [H,W,3] (and y_hat if asked); images over `max_pixels` are refused."""
  bs = bitstream.unpack(data)
  if bs.model_id != model.model_id:
    raise UserError(f"this .jsc was made by model {bs.model_id.hex()}, not by the loaded model "
                    f"{model.model_id.hex()}")
  n, tiles = model.family.num_streams, bitstream.tile_count(bs.height, bs.width, bs.tile)
  if len(bs.streams) != n * tiles:
    raise UserError(f".jsc file has {len(bs.streams) // tiles} sub-streams{' per tile' if bs.tile else ''}, a "
                    f"{model.family.name} model writes {n}")
  if bs.tile % model.family.pad:
    raise UserError(f".jsc file has tiles of {bs.tile} pixels, a {model.family.name} model codes multiples of "
                    f"{model.family.pad}")
  check_declared_size(model, bs, max_pixels)
  hp, wp = padded_size(bs.height, bs.width, model.family.pad)
  try:
    with coder.all_consumed():  # every sub-stream is read to its end: lengths moved between streams are errors
      if bs.tile:
        y_hat = tiling.decode_latents(model, bs, hp, wp)
      else:
        x_hat, y_hat = model.family.decompress_for(bs.version)(model, bs.streams, hp, wp)
    if bs.tile:
      _check_finite(y_hat)
      img = tiling.synthesise(model, y_hat, bs.height, bs.width, bs.tile)
    else:
      x_hat, y_hat = np.asarray(x_hat)[0, :bs.height, :bs.width], np.asarray(y_hat)
      _check_finite(y_hat, x_hat)
      img = np.round(x_hat * 255.0).astype(np.uint8)
  except DECODE_ERRORS as e:
    raise UserError(f".jsc payload cannot be decoded ({type(e).__name__}: {e})") from e
  return (img, y_hat) if return_latents else img


def _check_finite(*arrays: np.ndarray) -> None:
  if not all(np.isfinite(a).all() for a in arrays):
    raise UserError(".jsc payload decodes to non-finite latents or pixels (corrupt, or not made by this model)")


@functools.partial(jax.jit, static_argnums=0)
def _forward(module, params, x, text):
  return module.apply({"params": params}, x, text, train=False)


def reconstruct(model: CodecModel, images: Sequence[np.ndarray] | np.ndarray, text=None
                ) -> tuple[np.ndarray, dict]:
  """The model's own hard-rounded inference pass (no entropy coding): uint8 images and the raw outputs."""
  images = np.asarray(images)
  b, h, w, _ = images.shape
  x = jnp.asarray(pad_images(images, model.family.pad).astype(np.float32) / 255.0)
  t = _text_batch(model, text, b)
  out = _forward(model.module, model.params, x, None if t is None else jnp.asarray(t))
  return np.round(np.clip(np.asarray(out["x_hat"])[:, :h, :w], 0, 1) * 255.0).astype(np.uint8), out


def reconstruct_tiled(model: CodecModel, image: np.ndarray, text=None, tile: int = tiling.TILE
                      ) -> tuple[np.ndarray, np.ndarray]:
  """The model's own tiled inference of one uint8 [H,W,3] image: what `decompress` gives for a tiled .jsc."""
  return tiling.reconstruct(model, *_tiled_input(model, np.asarray(image), text, tile), tile)
