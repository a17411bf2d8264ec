"""compress / decompress: the model's pieces driven slice by slice with the range coder.

Encoder and decoder call the same jitted functions (`_slice_params`, `_slice_refine`) with the same shapes, so
the means, scale indices and refined slices they compute are the same numbers; the encoder's batch may be
sharded over devices, the decoder works on one image.
"""

from __future__ import annotations

import functools
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.codec import bitstream
from jaxsemic.codec.image_io import read_image  # noqa: F401  (re-exported: the API contract)
from jaxsemic.codec.model_io import CodecModel
from jaxsemic.entropy import coder
from jaxsemic.entropy.gaussian import gaussian_likelihood, scale_index
from jaxsemic.errors import UserError

PAD = 64  # g_a downsamples by 16, h_a by 4 more


def _v(params):
  return {"params": params}


@functools.partial(jax.jit, static_argnums=0)
def _analysis(module, params, x, text):
  y = module.apply(_v(params), x, text, method="analysis")
  z_hat = jnp.round(module.apply(_v(params), y, method="hyper_analysis"))
  z_bits = -jnp.sum(jnp.log2(module.apply(_v(params), z_hat, method="z_likelihood")), axis=(1, 2, 3))
  return y, z_hat, z_bits


@functools.partial(jax.jit, static_argnums=0)
def _hyper(module, params, z_hat):
  return module.apply(_v(params), z_hat, method="hyper_synthesis")


@functools.partial(jax.jit, static_argnums=(0, 1))
def _slice_params(module, i, params, hyper_mean, hyper_scale, decoded, scale_table):
  mu, scale = module.apply(_v(params), i, hyper_mean, hyper_scale, list(decoded), method="slice_params")
  return mu, scale, scale_index(scale, scale_table)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _slice_refine(module, i, params, hyper_mean, decoded, symbols, mu):
  y_hat = symbols.astype(mu.dtype) + mu
  return module.apply(_v(params), i, hyper_mean, list(decoded), y_hat, method="slice_refine")


@jax.jit
def _slice_symbols(y, mu, scale):
  """Symbols round(y - mu) and their estimated bits per image under the (unquantised) Gaussian."""
  sym = jnp.round(y - mu)
  bits = -jnp.sum(jnp.log2(gaussian_likelihood(sym + mu, mu, scale)), axis=(1, 2, 3))
  return sym.astype(jnp.int32), bits, jnp.all(jnp.isfinite(y - mu))


@functools.partial(jax.jit, static_argnums=0)
def _synthesis(module, params, y_hat):
  return jnp.clip(module.apply(_v(params), y_hat, method="synthesis"), 0.0, 1.0)


def padded_size(h: int, w: int) -> tuple[int, int]:
  return -(-h // PAD) * PAD, -(-w // PAD) * PAD


def _pad(x: np.ndarray) -> np.ndarray:
  """Edge-replicates [B,H,W,C] up to multiples of 64 (cheaper to code than zeros)."""
  h, w = x.shape[1:3]
  hp, wp = padded_size(h, w)
  return np.pad(x, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)), mode="edge")


def _text_batch(model: CodecModel, text, batch: int) -> np.ndarray:
  if text is None:
    return np.zeros((batch, model.cfg.text_dim), np.float32)
  t = np.asarray(text, np.float32).reshape(batch, -1)
  if t.shape[1] != model.cfg.text_dim:
    raise UserError(f"text vector has dimension {t.shape[1]}, the model expects {model.cfg.text_dim}")
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
  if model.cfg.name != "selic":  # zoo models have their own drivers (jaxsemic/zoo/codec.py)
    from jaxsemic.zoo import codec as zoo_codec  # pylint: disable=import-outside-toplevel
    return zoo_codec.compress_batch(model, images)
  x = _pad(images).astype(np.float32) / 255.0
  t = _text_batch(model, text, b)
  put = (lambda a: jax.device_put(a, sharding)) if sharding is not None else jnp.asarray
  m, p = model.module, model.params
  y, z_hat, z_bits = _analysis(m, p, put(x), put(t))
  z_sym = np.asarray(z_hat).astype(np.int32)
  hyper_mean, hyper_scale = _hyper(m, p, z_hat)
  slices = jnp.split(y, model.cfg.num_slices, axis=-1)
  decoded, syms, idxs, y_bits = [], [], [], 0.0
  for i, y_i in enumerate(slices):
    mu, scale, idx = _slice_params(m, i, p, hyper_mean, hyper_scale, tuple(decoded), model.scale_table)
    sym, bits, finite = _slice_symbols(y_i, mu, scale)
    if not bool(finite):
      raise UserError("the model produced non-finite latents for this image")
    decoded.append(_slice_refine(m, i, p, hyper_mean, tuple(decoded), sym, mu))
    syms.append(np.asarray(sym))
    idxs.append(np.asarray(idx))
    y_bits = y_bits + np.asarray(bits)
  z_bits = np.asarray(z_bits)
  z_idx = np.broadcast_to(np.arange(z_sym.shape[-1], dtype=np.int32), z_sym.shape[1:])
  outs, infos = [], []
  for n in range(b):
    enc_z, enc_y = coder.new_encoder(), coder.new_encoder()
    model.z_coder.encode(enc_z, z_sym[n], z_idx)
    for sym, idx in zip(syms, idxs):
      model.y_coder.encode(enc_y, sym[n], idx[n])
    data = bitstream.pack(bitstream.Bitstream(model.model_id, h, w, (coder.finish(enc_z), coder.finish(enc_y))))
    outs.append(data)
    infos.append({"bytes": len(data), "bpp": 8.0 * len(data) / (h * w),
                  "estimated_bpp": float(z_bits[n] + y_bits[n]) / (h * w),
                  "height": h, "width": w})
  seconds = time.perf_counter() - t0
  for info in infos:
    info["seconds"] = seconds / b
  return outs, infos


def compress(model: CodecModel, image: np.ndarray, text=None) -> tuple[bytes, dict]:
  """Compresses one uint8 [H,W,3] image (text: the semantic vector [D], or None)."""
  image = np.asarray(image)
  if image.ndim != 3:
    raise UserError(f"expected a uint8 image [H,W,3], got shape {image.shape}")
  outs, infos = compress_batch(model, image[None], None if text is None else np.asarray(text)[None])
  return outs[0], infos[0]


def decompress(model: CodecModel, data: bytes, return_latents: bool = False):
  """Decodes a .jsc byte string to uint8 [H,W,3] (and y_hat if asked)."""
  bs = bitstream.unpack(data)
  if bs.model_id != model.model_id:
    raise UserError(f"this .jsc was made by model {bs.model_id.hex()}, not by the loaded model "
                    f"{model.model_id.hex()}")
  if model.cfg.name != "selic":  # zoo models (jaxsemic/zoo/codec.py)
    from jaxsemic.zoo import codec as zoo_codec  # pylint: disable=import-outside-toplevel
    return zoo_codec.decompress(model, bs, return_latents)
  if len(bs.streams) != 2:
    raise UserError(f".jsc file has {len(bs.streams)} sub-streams, this model writes 2")
  hp, wp = padded_size(bs.height, bs.width)
  m, p, c = model.module, model.params, model.cfg
  try:
    z_shape = (hp // PAD, wp // PAD, c.N)
    z_idx = np.broadcast_to(np.arange(c.N, dtype=np.int32), z_shape)
    z_sym = model.z_coder.decode(coder.new_decoder(bs.streams[0]), z_idx)
    hyper_mean, hyper_scale = _hyper(m, p, jnp.asarray(z_sym[None], jnp.float32))
    dec = coder.new_decoder(bs.streams[1])
    decoded = []
    for i in range(c.num_slices):
      mu, _, idx = _slice_params(m, i, p, hyper_mean, hyper_scale, tuple(decoded), model.scale_table)
      sym = model.y_coder.decode(dec, np.asarray(idx)[0])
      decoded.append(_slice_refine(m, i, p, hyper_mean, tuple(decoded), jnp.asarray(sym[None]), mu))
  except (ValueError, RuntimeError, OverflowError) as e:
    raise UserError(f".jsc payload cannot be decoded ({type(e).__name__}: {e})") from e
  y_hat = jnp.concatenate(decoded, axis=-1)
  x_hat = np.asarray(_synthesis(m, p, y_hat))[0, :bs.height, :bs.width]
  img = np.round(x_hat * 255.0).astype(np.uint8)
  return (img, np.asarray(y_hat)) if return_latents else img


@functools.partial(jax.jit, static_argnums=0)
def _forward(module, params, x, text):
  return module.apply(_v(params), x, text, train=False)


def reconstruct(model: CodecModel, images: Sequence[np.ndarray] | np.ndarray, text=None
                ) -> tuple[np.ndarray, dict]:
  """The model's own hard-rounded inference pass (no entropy coding): uint8 images and the raw outputs."""
  images = np.asarray(images)
  b, h, w, _ = images.shape
  x = jnp.asarray(_pad(images).astype(np.float32) / 255.0)
  out = _forward(model.module, model.params, x, jnp.asarray(_text_batch(model, text, b)))
  return np.round(np.clip(np.asarray(out["x_hat"])[:, :h, :w], 0, 1) * 255.0).astype(np.uint8), out
