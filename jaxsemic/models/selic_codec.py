"""SELIC's codec: coding tables, and compress / decompress driven by ChARM's slice loop with the range coder.

Stream layout (2 sub-streams): z symbols round(z) with one factorized-prior table per channel; then y, slice by
slice, symbols round(y_i - mu_i) with the Gaussian table of each position's scale index. Encoder and decoder run
the same loop (`charm.slice_loop`) over the same jitted functions with the same shapes, so the means, scale
indices and refined slices they compute are the same numbers (float32, `family.coder_precision`).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Mapping, Sequence

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


NON_FINITE = "the model produced non-finite latents for this image"


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
  """(the slices of y, z_hat, estimated bits of z per image)."""
  y = module.apply(variables(params), x, text, method="analysis")
  z_hat = jnp.round(module.apply(variables(params), y, method="hyper_analysis"))
  z_bits = -jnp.sum(jnp.log2(module.apply(variables(params), z_hat, method="z_likelihood")), axis=(1, 2, 3))
  return tuple(jnp.split(y, module.cfg.num_slices, axis=-1)), z_hat, z_bits


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


def _timed(timings: dict | None, stage: str, fn: Callable, *args):
  """fn(*args); given a `timings` dict (profiling), waits for the result and adds its wall and process CPU
  seconds to timings[stage] = [wall, cpu]."""
  if timings is None:
    return fn(*args)
  t0, c0 = time.perf_counter(), time.process_time()
  out = jax.block_until_ready(fn(*args))
  wall_cpu = timings.setdefault(stage, [0.0, 0.0])
  wall_cpu[0] += time.perf_counter() - t0
  wall_cpu[1] += time.process_time() - c0
  return out


def _latent_loop(model, hyper_mean, hyper_scale, code_slice, timings=None) -> list[jax.Array]:
  """ChARM's slice loop with the jitted pieces; code_slice(i, (mu, scale, idx)) -> int32 symbols of slice i."""
  m, p = model.module, model.params

  def params_of(i, decoded):
    return _timed(timings, "slice transforms", _slice_params, m, i, p, hyper_mean, hyper_scale, decoded,
                  model.scale_table)

  def symbols(i, mu_scale_idx):
    return code_slice(i, mu_scale_idx), mu_scale_idx[0]

  def refine(i, decoded, sym_mu):
    return _timed(timings, "slice transforms", _slice_refine, m, i, p, hyper_mean, decoded, *sym_mu)

  return charm.slice_loop(model.cfg.num_slices, params_of, symbols, refine)


def compress(model, x: np.ndarray, text: np.ndarray | None, sharding=None, timings: dict | None = None
             ) -> tuple[list[tuple[bytes, ...]], list[float]]:
  """Sub-streams (z, y) and estimated bits of each padded image of the batch (which may be sharded).

  Every slice is dispatched to the device without waiting; the host range-codes slice i while the device
  computes the later ones. `timings` (profiling only) collects [wall, CPU] seconds per stage, waiting after
  each.
  """
  b = x.shape[0]
  t = np.zeros((b, model.cfg.text_dim), np.float32) if text is None else text
  put = (lambda a: jax.device_put(a, sharding)) if sharding is not None else jnp.asarray
  m, p = model.module, model.params
  with coder_precision():
    y_slices, z_hat, z_bits = _timed(timings, "g_a + h_a", _analysis, m, p, put(x), put(t))
    hyper_mean, hyper_scale = _timed(timings, "h_s", _hyper, m, p, z_hat)
    coded = []  # per slice, on the device: (symbols, scale indices, estimated bits, all finite)

    def code_slice(i, mu_scale_idx):
      mu, scale, idx = mu_scale_idx
      sym, bits, finite = _timed(timings, "slice transforms", _slice_symbols, y_slices[i], mu, scale)
      coded.append((sym, idx, bits, finite))
      return sym

    _latent_loop(model, hyper_mean, hyper_scale, code_slice, timings)
  return _timed(timings, "range coder", _encode_streams, model, z_hat, z_bits, coded)


def _encode_streams(model, z_hat, z_bits, coded) -> tuple[list[tuple[bytes, ...]], list[float]]:
  """Range-codes z and the slices of y of each image (slice by slice, as the device delivers them)."""
  z_hat = np.asarray(z_hat)
  if not np.isfinite(z_hat).all():
    raise UserError(NON_FINITE)
  z_sym = z_hat.astype(np.int32)
  z_idx = channel_index(z_sym.shape[1:])
  b = z_sym.shape[0]
  enc_z, enc_y = [coder.new_encoder() for _ in range(b)], [coder.new_encoder() for _ in range(b)]
  for n in range(b):
    model.z_coder.encode(enc_z[n], z_sym[n], z_idx)
  y_bits = 0.0
  for sym, idx, slice_bits, finite in coded:
    if not bool(finite):
      raise UserError(NON_FINITE)
    sym, idx = np.asarray(sym), np.asarray(idx)
    for n in range(b):
      model.y_coder.encode(enc_y[n], sym[n], idx[n])
    y_bits = y_bits + np.asarray(slice_bits)
  bits = np.asarray(z_bits) + y_bits
  return [(coder.finish(ez), coder.finish(ey)) for ez, ey in zip(enc_z, enc_y)], [float(v) for v in bits]


def decompress(model, streams: Sequence[bytes], hp: int, wp: int, timings: dict | None = None
               ) -> tuple[jax.Array, jax.Array]:
  """(x_hat, y_hat) of one image from its (z, y) sub-streams; the padded size gives the latent shapes."""
  m, p, c = model.module, model.params, model.cfg
  z_sym = _timed(timings, "range coder", model.z_coder.decode, coder.new_decoder(streams[0]),
                 channel_index((hp // 64, wp // 64, c.N)))
  dec = coder.new_decoder(streams[1])

  def code_slice(i, mu_scale_idx):
    idx = np.asarray(mu_scale_idx[2])[0]
    return _timed(timings, "range coder", model.y_coder.decode, dec, idx)[None]

  with coder_precision():
    hyper_mean, hyper_scale = _timed(timings, "h_s", _hyper, m, p, z_sym[None].astype(np.float32))
    decoded = _latent_loop(model, hyper_mean, hyper_scale, code_slice, timings)
    y_hat = jnp.concatenate(decoded, axis=-1)
    return _timed(timings, "g_s", synthesis, m, p, y_hat), y_hat


def text_dim(cfg: ModelConfig) -> int:
  """D, or 0 for the no-text baseline (fusion 'none')."""
  return 0 if cfg.fusion == "none" else cfg.text_dim


FAMILY = Family(name="selic", config_from_any=ModelConfig.from_any, build=SELIC,
                make_coding_tables=make_coding_tables, compress=compress, decompress=decompress, num_streams=2,
                text_dim=text_dim)
