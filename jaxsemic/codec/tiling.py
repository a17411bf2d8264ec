"""Large images in bounded memory: latent-domain tiling of compress and decompress (docs/bitstream.md, Tiles).

The padded image is cut into a grid of `tile` x `tile` pixel tiles (the last row and column smaller, all sides
multiples of 64). Three steps, each one tile at a time:
  1. g_a on each tile with a margin of ANALYSIS_HALO pixels (clipped at the image border), cropped to the tile's
     latents: the stitched latent y is the full-image g_a(x) up to float rounding (the margin covers SELIC's
     receptive field of 57 pixels), so tiling leaves no seam in y;
  2. each latent tile is entropy-coded on its own by the model's family (hyperprior and context of that tile
     only), through a view of the model whose g_a and g_s are the identity: the family's own compress and
     decompress turn a latent tile into sub-streams and back, so a tile decodes exactly as a small image does;
  3. g_s on the stitched y_hat in tiles with a margin of SYNTHESIS_HALO latents, cropped to the tile's pixels.
The decoder repeats 2 (decode) and 3, so decompress == `reconstruct` (the model's own tiled inference) exactly.
Peak memory is the image, y, y_hat and one tile's activations, not the whole image's activations.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from typing import Iterator

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.codec import bitstream
from jaxsemic.family import coder_precision, synthesis, variables

STRIDE = 16  # g_a's downsampling (every family: 4 stride-2 stages); h_a's further 4 makes the padding 64
TILE = 1024  # default tile side in pixels (64 latents): ~1 GiB of g_a/g_s activations for SELIC q2
TILE_ABOVE = 2048 * 2048  # images with more pixels are tiled by default; smaller ones are coded whole
ANALYSIS_HALO = 96  # pixels of context around each g_a tile (a multiple of STRIDE), SELIC's receptive field is 89
SYNTHESIS_HALO = 4  # latents of context around each g_s tile

Span = tuple[int, int]


def default_tile(height: int, width: int) -> int:
  """The tile side the encoder picks: 0 (whole image, today's format) up to TILE_ABOVE pixels, else TILE."""
  return TILE if height * width > TILE_ABOVE else 0


def spans(n: int, tile: int) -> list[Span]:
  """[start, end) of each tile along a side of length n."""
  return [(s, min(s + tile, n)) for s in range(0, n, tile)]


def grid(hp: int, wp: int, tile: int) -> Iterator[tuple[Span, Span]]:
  """(row span, column span) of every tile of a padded image, in raster order (the stream order)."""
  for r in spans(hp, tile):
    for c in spans(wp, tile):
      yield r, c


def _window(span: Span, halo: int, n: int) -> Span:
  return max(0, span[0] - halo), min(n, span[1] + halo)


@functools.partial(jax.jit, static_argnums=0)
def _analysis(module, params, x, text):
  args = (x,) if text is None else (x, text)
  return module.apply(variables(params), *args, method="analysis")


@functools.partial(jax.jit, static_argnums=0)
def _forward(module, params, x, text):
  return module.apply(variables(params), x, text, train=False)


def analysis(model, padded: np.ndarray, text: np.ndarray | None, tile: int) -> np.ndarray:
  """y [1, Hp/16, Wp/16, M] of one edge-padded uint8 image [Hp, Wp, 3], g_a run tile by tile with a margin."""
  hp, wp, _ = padded.shape
  chex.assert_equal((hp % STRIDE, wp % STRIDE, tile % bitstream.TILE_MULTIPLE), (0, 0, 0))
  y = None
  t = None if text is None else jnp.asarray(text)
  for rows, cols in grid(hp, wp, tile):
    (r0, r1), (c0, c1) = _window(rows, ANALYSIS_HALO, hp), _window(cols, ANALYSIS_HALO, wp)
    x = jnp.asarray(padded[None, r0:r1, c0:c1].astype(np.float32) / 255.0)
    with coder_precision():
      y_win = np.asarray(_analysis(model.module, model.params, x, t))
    if y is None:
      y = np.zeros((1, hp // STRIDE, wp // STRIDE, y_win.shape[-1]), np.float32)
    a, c = (rows[0] - r0) // STRIDE, (cols[0] - c0) // STRIDE
    y[:, rows[0] // STRIDE:rows[1] // STRIDE, cols[0] // STRIDE:cols[1] // STRIDE] = (
        y_win[:, a:a + (rows[1] - rows[0]) // STRIDE, c:c + (cols[1] - cols[0]) // STRIDE])
  return y


def synthesise(model, y_hat: np.ndarray, height: int, width: int, tile: int) -> np.ndarray:
  """uint8 [height, width, 3] from y_hat [1, h, w, M], g_s run tile by tile with a margin, cropped."""
  _, h, w, _ = y_hat.shape
  lt = tile // STRIDE
  out = np.zeros((height, width, 3), np.uint8)
  for rows, cols in grid(h, w, lt):
    (r0, r1), (c0, c1) = _window(rows, SYNTHESIS_HALO, h), _window(cols, SYNTHESIS_HALO, w)
    x = np.asarray(synthesis(model.module, model.params, jnp.asarray(y_hat[:, r0:r1, c0:c1])))[0]
    a, c = (rows[0] - r0) * STRIDE, (cols[0] - c0) * STRIDE
    top, left = rows[0] * STRIDE, cols[0] * STRIDE
    bottom, right = min(rows[1] * STRIDE, height), min(cols[1] * STRIDE, width)
    out[top:bottom, left:right] = np.round(x[a:a + bottom - top, c:c + right - left] * 255.0).astype(np.uint8)
  return out


class _LatentIO:
  """Mixin making g_a and g_s the identity: the family's coder then maps a latent tile to streams and back."""

  def analysis(self, x, text=None):
    del text
    return x

  def synthesis(self, y_hat):
    return y_hat


@functools.cache
def _latent_class(cls: type) -> type:
  return type(f"Latent{cls.__name__}", (_LatentIO, cls), {"__module__": __name__})


def latent_view(model):
  """A shallow copy of `model` whose module codes latents: g_a and g_s replaced by the identity."""
  module = model.module
  fields = {f.name: getattr(module, f.name) for f in dataclasses.fields(module)
            if f.init and f.name not in ("parent", "name")}
  view = copy.copy(model)
  view.module = _latent_class(type(module))(**fields)
  return view


def latent_tiles(y: np.ndarray, tile: int) -> Iterator[np.ndarray]:
  """The latent tiles [1, th, tw, M] of y in stream order."""
  for (r0, r1), (c0, c1) in grid(y.shape[1], y.shape[2], tile // STRIDE):
    yield y[:, r0:r1, c0:c1]


def tile_shapes(hp: int, wp: int, tile: int) -> list[tuple[int, int]]:
  """Padded pixel size (th, tw) of each tile, in stream order."""
  return [(r1 - r0, c1 - c0) for (r0, r1), (c0, c1) in grid(hp, wp, tile)]


def compress(model, padded: np.ndarray, h: int, w: int, text: np.ndarray | None, tile: int
             ) -> tuple[bytes, dict]:
  """A tiled .jsc of an h x w image, given edge-padded as uint8 [Hp, Wp, 3] (text [1, D] or None)."""
  t0 = time.perf_counter()
  y = analysis(model, padded, text, tile)
  view = latent_view(model)
  streams, n_bits = [], 0.0
  for y_tile in latent_tiles(y, tile):
    s, b = model.family.compress(view, y_tile, text, None)
    streams.extend(s[0])
    n_bits += b[0]
  data = bitstream.pack(bitstream.Bitstream(model.model_id, h, w, tuple(streams), tile=tile))
  return data, {"bytes": len(data), "bpp": 8.0 * len(data) / (h * w), "estimated_bpp": n_bits / (h * w),
                "height": h, "width": w, "seconds": time.perf_counter() - t0, "tile": tile}


def decode_latents(model, bs: bitstream.Bitstream, hp: int, wp: int) -> np.ndarray:
  """y_hat [1, Hp/16, Wp/16, M] of a tiled .jsc: each tile's streams decoded by the family, stitched."""
  view, n = latent_view(model), model.family.num_streams
  y_hat = None
  for k, ((r0, r1), (c0, c1)) in enumerate(grid(hp // STRIDE, wp // STRIDE, bs.tile // STRIDE)):
    decode = model.family.decompress_for(bs.version)
    _, y_tile = decode(view, bs.streams[k * n:(k + 1) * n], (r1 - r0) * STRIDE, (c1 - c0) * STRIDE)
    y_tile = np.asarray(y_tile)
    if y_hat is None:
      y_hat = np.zeros((1, hp // STRIDE, wp // STRIDE, y_tile.shape[-1]), np.float32)
    y_hat[:, r0:r1, c0:c1] = y_tile
  return y_hat


def reconstruct(model, padded: np.ndarray, h: int, w: int, text: np.ndarray | None, tile: int
                ) -> tuple[np.ndarray, np.ndarray]:
  """The model's own tiled inference (hard rounding, no entropy coding) of `compress`'s input: uint8, y_hat."""
  y = analysis(model, padded, text, tile)
  view = latent_view(model)
  t = None if text is None else jnp.asarray(text)
  y_hat = np.zeros_like(y)
  for (r0, r1), (c0, c1) in grid(y.shape[1], y.shape[2], tile // STRIDE):
    with coder_precision():
      y_hat[:, r0:r1, c0:c1] = np.asarray(_forward(view.module, model.params, jnp.asarray(y[:, r0:r1, c0:c1]),
                                                   t)["y_hat"])
  return synthesise(model, y_hat, h, w, tile), y_hat
