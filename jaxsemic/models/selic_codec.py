"""SELIC's codec: coding tables, and compress / decompress driven by ChARM's slice loop with the range coder.

Stream layout (2 sub-streams): z symbols round(z) with one factorized-prior table per channel; then y, slice by
slice, symbols round(y_i - mu_i) with the Gaussian table of each position's scale index. Encoder and decoder run
the same loop (`charm.slice_loop`) over the same jitted functions with the same shapes, so the means, scale
indices and refined slices they compute are the same numbers (float32, `family.coder_precision`).
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
from jaxsemic.family import Family, channel_index, coder_precision, synthesis, variables
from jaxsemic.models import charm
from jaxsemic.models.config import ModelConfig
from jaxsemic.models.selic import SELIC


def make_coding_tables(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """Per-channel tables of the factorized prior of z (`z_*`) and per-scale Gaussian tables (`y_*`)."""
  density = {k: np.asarray(v) for k, v in params["z_prior"].items()}
  scale_table = default_scale_table()
  out = {"scale_table": scale_table}
  out.update(tables_lib.factorized_tables(density).as_dict("z"))
  out.update(tables_lib.gaussian_tables(scale_table).as_dict("y"))
  return out


@functools.partial(runtime.persistent_jit, static_argnums=0)
def _analysis(module, params, x, text):
  y = module.apply(variables(params), x, text, method="analysis")
  z_hat = jnp.round(module.apply(variables(params), y, method="hyper_analysis"))
  z_bits = -jnp.sum(jnp.log2(module.apply(variables(params), z_hat, method="z_likelihood")), axis=(1, 2, 3))
  return y, z_hat, z_bits


@functools.partial(runtime.persistent_jit, static_argnums=0)
def _hyper(module, params, z_hat):
  return module.apply(variables(params), z_hat, method="hyper_synthesis")


@functools.partial(runtime.persistent_jit, static_argnums=(0, 1))
def _slice_params(module, i, params, hyper_mean, hyper_scale, decoded, scale_table):
  mu, scale = module.apply(variables(params), i, hyper_mean, hyper_scale, list(decoded), method="slice_params")
  return mu, scale, scale_index(scale, scale_table)


@functools.partial(runtime.persistent_jit, static_argnums=(0, 1))
def _slice_refine(module, i, params, hyper_mean, decoded, symbols, mu):
  y_hat = symbols.astype(mu.dtype) + mu
  return module.apply(variables(params), i, hyper_mean, list(decoded), y_hat, method="slice_refine")


@runtime.persistent_jit
def _slice_symbols(y, mu, scale):
  """Symbols round(y - mu) and their estimated bits per image under the (unquantised) Gaussian."""
  sym = jnp.round(y - mu)
  bits = -jnp.sum(jnp.log2(gaussian_likelihood(sym + mu, mu, scale)), axis=(1, 2, 3))
  return sym.astype(jnp.int32), bits, jnp.all(jnp.isfinite(y - mu))


def _latent_loop(model, hyper_mean, hyper_scale, code_slice) -> list[jax.Array]:
  """ChARM's slice loop with the jitted pieces; code_slice(i, (mu, scale, idx)) -> int32 symbols of slice i."""
  m, p = model.module, model.params

  def params_of(i, decoded):
    return _slice_params(m, i, p, hyper_mean, hyper_scale, decoded, model.scale_table)

  def symbols(i, mu_scale_idx):
    return code_slice(i, mu_scale_idx), mu_scale_idx[0]

  def refine(i, decoded, sym_mu):
    return _slice_refine(m, i, p, hyper_mean, decoded, *sym_mu)

  return charm.slice_loop(model.cfg.num_slices, params_of, symbols, refine)


def compress(model, x: np.ndarray, text: np.ndarray | None, sharding=None
             ) -> tuple[list[tuple[bytes, ...]], list[float]]:
  """Sub-streams (z, y) and estimated bits of each padded image of the batch (which may be sharded)."""
  b = x.shape[0]
  t = np.zeros((b, model.cfg.text_dim), np.float32) if text is None else text
  put = (lambda a: jax.device_put(a, sharding)) if sharding is not None else jnp.asarray
  m, p = model.module, model.params
  with coder_precision():
    y, z_hat, z_bits = _analysis(m, p, put(x), put(t))
    hyper_mean, hyper_scale = _hyper(m, p, z_hat)
    y_slices = jnp.split(y, model.cfg.num_slices, axis=-1)
    syms, idxs, y_bits = [], [], 0.0

    def code_slice(i, mu_scale_idx):
      nonlocal y_bits
      mu, scale, idx = mu_scale_idx
      sym, bits, finite = _slice_symbols(y_slices[i], mu, scale)
      if not bool(finite):
        raise UserError("the model produced non-finite latents for this image")
      syms.append(np.asarray(sym))
      idxs.append(np.asarray(idx))
      y_bits = y_bits + np.asarray(bits)
      return sym

    _latent_loop(model, hyper_mean, hyper_scale, code_slice)
  z_sym = np.asarray(z_hat).astype(np.int32)
  z_bits = np.asarray(z_bits)
  z_idx = channel_index(z_sym.shape[1:])
  streams, bits = [], []
  for n in range(b):
    enc_z, enc_y = coder.new_encoder(), coder.new_encoder()
    model.z_coder.encode(enc_z, z_sym[n], z_idx)
    for sym, idx in zip(syms, idxs):
      model.y_coder.encode(enc_y, sym[n], idx[n])
    streams.append((coder.finish(enc_z), coder.finish(enc_y)))
    bits.append(float(z_bits[n] + y_bits[n]))
  return streams, bits


def decompress(model, streams: Sequence[bytes], hp: int, wp: int) -> tuple[jax.Array, jax.Array]:
  """(x_hat, y_hat) of one image from its (z, y) sub-streams; the padded size gives the latent shapes."""
  m, p, c = model.module, model.params, model.cfg
  z_sym = model.z_coder.decode(coder.new_decoder(streams[0]), channel_index((hp // 64, wp // 64, c.N)))
  dec = coder.new_decoder(streams[1])
  with coder_precision():
    hyper_mean, hyper_scale = _hyper(m, p, jnp.asarray(z_sym[None], jnp.float32))
    decoded = _latent_loop(model, hyper_mean, hyper_scale,
                           lambda i, mu_scale_idx: jnp.asarray(model.y_coder.decode(dec, np.asarray(
                               mu_scale_idx[2])[0])[None]))
    y_hat = jnp.concatenate(decoded, axis=-1)
    return synthesis(m, p, y_hat), y_hat


def text_dim(cfg: ModelConfig) -> int:
  """D, or 0 for the no-text baseline (fusion 'none')."""
  return 0 if cfg.fusion == "none" else cfg.text_dim


FAMILY = Family(name="selic", config_from_any=ModelConfig.from_any, build=SELIC,
                make_coding_tables=make_coding_tables, compress=compress, decompress=decompress, num_streams=2,
                text_dim=text_dim)
