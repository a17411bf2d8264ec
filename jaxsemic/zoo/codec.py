"""Codec drivers of the zoo models: coding tables, compress and decompress (the `Family` contract).

Three drivers, each range-coding with `entropy.coder.TableCoder`; a family picks one in `zoo.families`:
  factorized  1 stream (y)     y symbols round(y - median) with the entropy bottleneck's per-channel tables
  gaussian    2 streams (z, y) z as above; y symbols round(y - mean) with the Gaussian table of each scale index
                               (zero means in bmshj2018-hyperprior, h_s's means in mbt2018-mean)
  context     2 streams (z, y) y coded diagonal by diagonal (t = 3r + c), one range-coder chunk per diagonal
                               (`zoo.context_coding`); .jsc version 2 files: the entropy parameters as 1x1 convs;
                               version 1 files: position by position, raster
The tables `z_*` always hold the entropy bottleneck's (which codes y in the factorized model). Images are coded
one at a time, so the encoder runs the decoder's shapes.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.entropy import coder
from jaxsemic.entropy import tables as tables_lib
from jaxsemic.entropy.gaussian import default_scale_table, gaussian_likelihood, scale_index
from jaxsemic import runtime
from jaxsemic.errors import UserError
from jaxsemic.family import channel_index, coder_precision, synthesis, variables
from jaxsemic.zoo import context_coding
from jaxsemic.zoo.entropy_bottleneck import median_tables

Streams = tuple[list[tuple[bytes, ...]], list[float]]


def make_coding_tables(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Integer tables of a zoo model: the median-shifted bottleneck (`z_*`) and the Gaussian scales (`y_*`)."""
  scale_table = default_scale_table()
  out = {"scale_table": scale_table}
  out.update(median_tables(params["entropy_bottleneck"]).as_dict("z"))
  out.update(tables_lib.gaussian_tables(scale_table).as_dict("y"))
  return out


def _medians(params) -> jax.Array:
  return params["entropy_bottleneck"]["quantiles"][:, 0, 1]


def _bottleneck_bits(module, params, v_hat):
  lik = module.apply(variables(params), v_hat, method=lambda mdl, v: mdl.entropy_bottleneck.density(v))
  return -jnp.sum(jnp.log2(lik), axis=(1, 2, 3))


@functools.partial(runtime.persistent_jit, static_argnums=(0, 3))
def _encode_front(module, params, x, hyper: bool):
  """y, and the bottleneck-coded latent's (z's, or y's without a hyperprior) symbols, values and bits."""
  y = module.apply(variables(params), x, method="analysis")
  v = module.apply(variables(params), y, method="hyper_analysis") if hyper else y
  m = _medians(params)
  sym = jnp.round(v - m)
  v_hat = sym + m
  return y, sym.astype(jnp.int32), v_hat, _bottleneck_bits(module, params, v_hat)


@functools.partial(runtime.persistent_jit, static_argnums=0)
def _dequantise_bottleneck(module, params, sym):
  return sym.astype(jnp.float32) + _medians(params)


@functools.partial(runtime.persistent_jit, static_argnums=0)
def _gaussian_params(module, params, z_hat, scale_table):
  scales, means = module.apply(variables(params), z_hat, method="gaussian_params")
  return scales, means, scale_index(scales, scale_table)


@runtime.persistent_jit
def _gaussian_symbols(y, scales, means):
  sym = jnp.round(y - means)
  bits = -jnp.sum(jnp.log2(gaussian_likelihood(sym + means, means, scales)), axis=(1, 2, 3))
  return sym.astype(jnp.int32), sym + means, bits


@functools.partial(runtime.persistent_jit, static_argnums=0)
def _hyper(module, params, z_hat):
  return module.apply(variables(params), z_hat, method="hyper_synthesis")


def _front(model, x: np.ndarray, hyper: bool):
  """Analysis of one padded image [1,Hp,Wp,3]: y, and the bottleneck stream with its bits."""
  y, v_sym, v_hat, v_bits = _encode_front(model.module, model.params, jnp.asarray(x), hyper)
  if not bool(jnp.all(jnp.isfinite(y))):
    raise UserError("the model produced non-finite latents for this image")
  v_sym = np.asarray(v_sym)[0]
  enc = coder.new_encoder()
  model.z_coder.encode(enc, v_sym, channel_index(v_sym.shape))
  return y, v_hat, coder.finish(enc), float(v_bits[0])


def _y_stream(model, parts) -> bytes:
  """The y sub-stream from (symbols, scale indices) chunks, in the order the decoder reads them."""
  enc = coder.new_encoder()
  for sym, idx in parts:
    model.y_coder.encode(enc, sym, idx)
  return coder.finish(enc)


def _decode_bottleneck(model, stream: bytes, shape: tuple[int, int, int]) -> jax.Array:
  sym = model.z_coder.decode(coder.new_decoder(stream), channel_index(shape))
  return _dequantise_bottleneck(model.module, model.params, jnp.asarray(sym[None]))


def _per_image(code_one):
  """A family's `compress` from a function coding one padded image [1,Hp,Wp,3] -> (streams, bits)."""
  def compress(model, x: np.ndarray, text=None, sharding=None) -> Streams:
    del text, sharding  # the zoo models read no text; one image at a time
    out = [code_one(model, x[n:n + 1]) for n in range(x.shape[0])]
    return [s for s, _ in out], [b for _, b in out]
  return compress


# --- factorized: y through the entropy bottleneck ----------------------------------------------------------------

def _factorized_one(model, x):
  _, _, stream, bits = _front(model, x, hyper=False)
  return (stream,), bits


def factorized_decompress(model, streams: Sequence[bytes], hp: int, wp: int):
  y_hat = _decode_bottleneck(model, streams[0], (hp // 16, wp // 16, model.cfg.M))
  return synthesis(model.module, model.params, y_hat), y_hat


factorized_compress = _per_image(_factorized_one)


# --- gaussian: z through the bottleneck, y ~ N(mean, scale) from h_s(z_hat) ----------------------------------------

def _gaussian_one(model, x):
  m, p = model.module, model.params
  y, z_hat, z_stream, bits = _front(model, x, hyper=True)
  with coder_precision():
    scales, means, idx = _gaussian_params(m, p, z_hat, model.scale_table)
  y_sym, _, y_bits = _gaussian_symbols(y, scales, means)
  y_stream = _y_stream(model, [(np.asarray(y_sym)[0], np.asarray(idx)[0])])
  return (z_stream, y_stream), bits + float(y_bits[0])


def gaussian_decompress(model, streams: Sequence[bytes], hp: int, wp: int):
  m, p = model.module, model.params
  z_hat = _decode_bottleneck(model, streams[0], (hp // 64, wp // 64, model.cfg.N))
  with coder_precision():
    _, means, idx = _gaussian_params(m, p, z_hat, model.scale_table)
  y_sym = model.y_coder.decode(coder.new_decoder(streams[1]), np.asarray(idx)[0])
  y_hat = jnp.asarray(y_sym[None], jnp.float32) + means
  return synthesis(m, p, y_hat), y_hat


gaussian_compress = _per_image(_gaussian_one)


# --- context: z through the bottleneck, y with the masked-conv context, diagonal by diagonal (zoo.context_coding) --

def context_streams(model, x, order: str = "wavefront", entropy_rows: bool = True):
  """(z, y) sub-streams and estimated bits of one padded image [1,Hp,Wp,3] with y coded in `order`
  (`entropy_rows=False`: version 2's entropy-parameter arithmetic)."""
  m, p = model.module, model.params
  y, z_hat, z_stream, bits = _front(model, x, hyper=True)
  with coder_precision():
    hyper = _hyper(m, p, z_hat)
    _, chunks, y_bits = context_coding.run(m, p, hyper[0], y[0], model.scale_table, context_coding.echo, order,
                                           entropy_rows=entropy_rows)
  return (z_stream, _y_stream(model, chunks)), bits + y_bits


def context_decode(model, streams: Sequence[bytes], hp: int, wp: int, order: str, entropy_rows: bool = True):
  """(x_hat, y_hat) from (z, y) sub-streams whose y is coded in `order` (`context_coding.run`)."""
  m, p = model.module, model.params
  z_hat = _decode_bottleneck(model, streams[0], (hp // 64, wp // 64, model.cfg.N))
  host = context_coding.Decoding(model.y_coder, coder.new_decoder(streams[1]))
  with coder_precision():
    hyper = _hyper(m, p, z_hat)
    y0 = np.zeros((hp // 16, wp // 16, model.cfg.M), np.float32)
    y_hat_1, _, _ = context_coding.run(m, p, hyper[0], y0, model.scale_table, host, order, estimate_bits=False,
                                       entropy_rows=entropy_rows)
  if host.error is not None:
    raise host.error
  y_hat = jnp.asarray(y_hat_1[None])
  return synthesis(m, p, y_hat), y_hat


def context_decompress(model, streams: Sequence[bytes], hp: int, wp: int):
  """Decodes y diagonal by diagonal (the .jsc format since version 2; version 3's entropy-parameter arithmetic)."""
  return context_decode(model, streams, hp, wp, "wavefront")


def context_decompress_v2(model, streams: Sequence[bytes], hp: int, wp: int):
  """Decodes a .jsc version 2 file: diagonal by diagonal, the entropy parameters as 1x1 convs."""
  return context_decode(model, streams, hp, wp, "wavefront", entropy_rows=False)


def context_decompress_v1(model, streams: Sequence[bytes], hp: int, wp: int):
  """Decodes a .jsc version 1 file: y position by position in raster order, with version 1's serial program."""
  return context_decode(model, streams, hp, wp, "serial")


context_compress = _per_image(context_streams)
