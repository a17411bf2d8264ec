"""Codec drivers of the zoo models: coding tables, compress and decompress through the shared `.jsc` format.

Streams per family (`ZooConfig.family`), each range-coded with `entropy.coder.TableCoder`:
  factorized  (y)     y symbols round(y - median) with the entropy bottleneck's per-channel tables
  hyperprior  (z, y)  z as above; y symbols round(y - mean) with the Gaussian tables chosen by scale index
  meanscale   (z, y)  the same with the means of h_s
  context     (z, y)  y coded position by position in raster order (`zoo.context_coding`)
The tables `z_*` always hold the entropy bottleneck's (which codes y in the factorized model).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.codec import bitstream
from jaxsemic.codec.api import _pad, padded_size  # the SELIC path's padding (edge replication to 64)
from jaxsemic.entropy import coder
from jaxsemic.entropy import tables as tables_lib
from jaxsemic.entropy.gaussian import default_scale_table, gaussian_likelihood, scale_index
from jaxsemic.errors import UserError
from jaxsemic.zoo import context_coding
from jaxsemic.zoo.entropy_bottleneck import median_tables

STREAMS = {"factorized": 1, "hyperprior": 2, "meanscale": 2, "context": 2}


def make_coding_tables(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Integer tables of a zoo model: the median-shifted bottleneck (`z_*`) and the Gaussian scales (`y_*`)."""
  scale_table = default_scale_table()
  out = {"scale_table": scale_table}
  out.update(median_tables(params["entropy_bottleneck"]).as_dict("z"))
  out.update(tables_lib.gaussian_tables(scale_table).as_dict("y"))
  return out


def _v(params):
  return {"params": params}


def _medians(params) -> jax.Array:
  return params["entropy_bottleneck"]["quantiles"][:, 0, 1]


def _bottleneck_bits(module, params, v_hat):
  lik = module.apply(_v(params), v_hat, method=lambda mdl, v: mdl.entropy_bottleneck.density(v))
  return -jnp.sum(jnp.log2(lik), axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnums=0)
def _encode_front(module, params, x):
  """y, and the bottleneck-coded latent's symbols, dequantised values and bits (y itself if factorized)."""
  y = module.apply(_v(params), x, method="analysis")
  v = y if module.cfg.family == "factorized" else module.apply(_v(params), y, method="hyper_analysis")
  m = _medians(params)
  sym = jnp.round(v - m)
  v_hat = sym + m
  return y, sym.astype(jnp.int32), v_hat, _bottleneck_bits(module, params, v_hat)


@functools.partial(jax.jit, static_argnums=0)
def _dequantise_bottleneck(module, params, sym):
  return sym.astype(jnp.float32) + _medians(params)


@functools.partial(jax.jit, static_argnums=0)
def _gaussian_params(module, params, z_hat, scale_table):
  scales, means = module.apply(_v(params), z_hat, method="gaussian_params")
  return scales, means, scale_index(scales, scale_table)


@jax.jit
def _gaussian_symbols(y, scales, means):
  sym = jnp.round(y - means)
  bits = -jnp.sum(jnp.log2(gaussian_likelihood(sym + means, means, scales)), axis=(1, 2, 3))
  return sym.astype(jnp.int32), sym + means, bits


@functools.partial(jax.jit, static_argnums=0)
def _hyper(module, params, z_hat):
  return module.apply(_v(params), z_hat, method="hyper_synthesis")


@functools.partial(jax.jit, static_argnums=0)
def _synthesis(module, params, y_hat):
  return jnp.clip(module.apply(_v(params), y_hat, method="synthesis"), 0.0, 1.0)


def _channel_index(shape: tuple[int, ...]) -> np.ndarray:
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)


def compress_batch(model, images: np.ndarray) -> tuple[list[bytes], list[dict]]:
  """Compresses validated uint8 images [B,H,W,3], one at a time: the decoder then runs the same shapes."""
  outs, infos = [], []
  for image in images:
    t0 = time.perf_counter()
    data, info = _compress_one(model, image[None])
    info["seconds"] = time.perf_counter() - t0
    outs.append(data)
    infos.append(info)
  return outs, infos


def _compress_one(model, image: np.ndarray) -> tuple[bytes, dict]:
  _, h, w, _ = image.shape
  family = model.cfg.family
  m, p = model.module, model.params
  x = jnp.asarray(_pad(image).astype(np.float32) / 255.0)
  y, v_sym, v_hat, v_bits = _encode_front(m, p, x)
  if not bool(jnp.all(jnp.isfinite(y))):
    raise UserError("the model produced non-finite latents for this image")
  bits = float(v_bits[0])
  y_parts = []  # (symbols, indices) chunks, coded in the order the decoder reads them
  if family in ("hyperprior", "meanscale"):
    scales, means, idx = _gaussian_params(m, p, v_hat, model.scale_table)
    y_sym, _, y_bits = _gaussian_symbols(y, scales, means)
    bits += float(y_bits[0])
    y_parts = [(np.asarray(y_sym)[0], np.asarray(idx)[0])]
  elif family == "context":
    hyper = _hyper(m, p, v_hat)
    _, syms, idxs, y_bits = context_coding.run(m, p, hyper[0], y[0], model.scale_table, context_coding.echo)
    bits += float(y_bits)
    y_parts = list(zip(syms, idxs))  # one chunk per latent position
  v_sym = np.asarray(v_sym)[0]
  enc_v = coder.new_encoder()
  model.z_coder.encode(enc_v, v_sym, _channel_index(v_sym.shape))
  streams = [coder.finish(enc_v)]
  if family != "factorized":
    enc_y = coder.new_encoder()
    for sym, idx in y_parts:
      model.y_coder.encode(enc_y, sym, idx)
    streams.append(coder.finish(enc_y))
  data = bitstream.pack(bitstream.Bitstream(model.model_id, h, w, tuple(streams)))
  return data, {"bytes": len(data), "bpp": 8.0 * len(data) / (h * w), "estimated_bpp": bits / (h * w),
                "height": h, "width": w}


def decompress(model, bs: bitstream.Bitstream, return_latents: bool = False):
  """Decodes a parsed .jsc of this model to uint8 [H,W,3] (and y_hat if asked)."""
  cfg, m, p = model.cfg, model.module, model.params
  family = cfg.family
  if len(bs.streams) != STREAMS[family]:
    raise UserError(f".jsc file has {len(bs.streams)} sub-streams, a {cfg.name} model writes {STREAMS[family]}")
  hp, wp = padded_size(bs.height, bs.width)
  y_hw = (hp // 16, wp // 16)
  try:
    v_shape = (*y_hw, cfg.M) if family == "factorized" else (hp // 64, wp // 64, cfg.N)
    v_sym = model.z_coder.decode(coder.new_decoder(bs.streams[0]), _channel_index(v_shape))
    v_hat = _dequantise_bottleneck(m, p, jnp.asarray(v_sym[None]))
    if family == "factorized":
      y_hat = v_hat
    elif family in ("hyperprior", "meanscale"):
      _, means, idx = _gaussian_params(m, p, v_hat, model.scale_table)
      y_sym = model.y_coder.decode(coder.new_decoder(bs.streams[1]), np.asarray(idx)[0])
      y_hat = jnp.asarray(y_sym[None], jnp.float32) + means
    else:
      hyper = _hyper(m, p, v_hat)
      host = context_coding.Decoding(model.y_coder, coder.new_decoder(bs.streams[1]))
      y0 = np.zeros((*y_hw, cfg.M), np.float32)
      y_hat_1, _, _, _ = context_coding.run(m, p, hyper[0], y0, model.scale_table, host)
      if host.error is not None:
        raise host.error
      y_hat = jnp.asarray(y_hat_1[None])
  except (ValueError, RuntimeError, OverflowError, IndexError) as e:
    raise UserError(f".jsc payload cannot be decoded ({type(e).__name__}: {e})") from e
  x_hat = np.asarray(_synthesis(m, p, y_hat))[0, :bs.height, :bs.width]
  img = np.round(x_hat * 255.0).astype(np.uint8)
  return (img, np.asarray(y_hat)) if return_latents else img
