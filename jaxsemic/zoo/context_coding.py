"""Coding a context model's latents (mbt2018 Sec. 3) step by step: jitted batches of positions, symbols on the host.

A position's (scale, mean) come from its 5x5 causal neighbourhood of already decoded latents, so decoding is
sequential; but only along the dependencies: all positions on one diagonal t = 3r + c depend only on earlier
diagonals (`schedule`), so the decoder walks the 3(h-1) + w diagonals instead of the h*w positions ("wavefront",
the .jsc format since version 2). Per step, one device call (`coding_step`, jitted once per latent shape and
cacheable on disk) evaluates all positions of the diagonal as one batch, and one host call gets their integer
symbols: the encoder's returns round(y - mean) (computed in the step), the decoder's range-decodes them with
the step's scale indices in one coder call. The "raster" schedule runs the same program one position per step,
each in the row it has in its diagonal, so both orders give the same numbers bit for bit (tested). Version 3
evaluates the entropy parameters' 1x1 convs as matrix products over the diagonal's rows (~2x faster on XLA:CPU at
these few rows; other float rounding), version 2 as convs: `entropy_rows`. (One `lax.scan` over the steps with
an `io_callback` per step was measured too: ~25 ms less per 768x512 image warm, but XLA does not keep programs
with host callbacks in its disk cache, so every new process compiled it: ~0.6 s more on a CLI call.)
`serial_pass` is .jsc version 1's decoder: raster order, one unbatched evaluation per position, one `lax.scan`
with an `io_callback` per position.

Encoder and decoder run the very same jitted functions with the same shapes, so the means and scale indices
they compute are the same numbers and the decoder stays in sync with the range coder.
"""

from __future__ import annotations

import functools
import itertools
import threading
from typing import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from jaxsemic.entropy.gaussian import gaussian_likelihood, scale_index
from jaxsemic.zoo.mbt2018 import CODING_SUBMODULES, CONTEXT_KERNEL

Array = jax.Array

# token -> host function (scale indices [M], proposed symbols [M]) -> symbols [M]. A token, not a closure, is
# passed to the jitted pass so that encoder and decoder share one compiled program.
_SESSIONS: dict[int, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
_LOCK = threading.Lock()
_COUNTER = itertools.count(1)


def _host_step(token, idx, proposed):
  return np.asarray(_SESSIONS[int(token)](np.asarray(idx), np.asarray(proposed)), np.int32)


@functools.partial(jax.jit, static_argnums=0)
def serial_pass(module, params, hyper: Array, y: Array, token: Array, scale_table: Array):
  """Walks the [h, w] grid in raster order; returns (y_hat [h,w,M], symbols [h*w,M], indices [h*w,M], bits).

  hyper: the hyperprior parameters [h, w, 2M] of one image; y: the latents [h, w, M] (zeros when decoding).
  """
  h, w, m = y.shape
  k = CONTEXT_KERNEL
  p = k // 2
  variables = {"params": params}

  def step(y_pad, pos):
    r, c = pos // w, pos % w
    window = jax.lax.dynamic_slice(y_pad, (r, c, 0), (k, k, m))
    hyper_px = jax.lax.dynamic_slice(hyper, (r, c, 0), (1, 1, hyper.shape[-1]))[0, 0]
    scales, means = module.apply(variables, hyper_px, window, method="context_params_at")
    idx = scale_index(scales, scale_table)
    y_px = jax.lax.dynamic_slice(y, (r, c, 0), (1, 1, m))[0, 0]
    proposed = jnp.round(y_px - means).astype(jnp.int32)
    sym = io_callback(_host_step, jax.ShapeDtypeStruct((m,), jnp.int32), token, idx, proposed)
    y_hat_px = sym.astype(y.dtype) + means
    bits = -jnp.sum(jnp.log2(gaussian_likelihood(y_hat_px, means, scales)))
    y_pad = jax.lax.dynamic_update_slice(y_pad, y_hat_px[None, None], (r + p, c + p, 0))
    return y_pad, (sym, idx, bits)

  y_pad = jnp.zeros((h + 2 * p, w + 2 * p, m), y.dtype)
  y_pad, (syms, idxs, bits) = jax.lax.scan(step, y_pad, jnp.arange(h * w))
  return y_pad[p:p + h, p:p + w], syms, idxs, jnp.sum(bits)


def schedule(h: int, w: int, order: str = "wavefront") -> tuple[np.ndarray, np.ndarray]:
  """Rows and columns [T, B] of the positions coded at each step (-1 pads), B the longest diagonal.

  "wavefront": step t codes every position with 3r + c = t (T = 3(h-1) + w steps). A 5x5 causal context reaches
  (r, c-1), (r-1, c+2) and (r-2, c+2), all on earlier diagonals, so a diagonal depends only on earlier ones.
  "raster": one position per step (T = h*w), in the slot it has in its diagonal, so that both orders evaluate
  every position as the same row of the same program (`coding_step`).
  Within a diagonal the positions go by increasing row.
  """
  t = 3 * np.arange(h)[:, None] + np.arange(w)[None, :]
  counts = np.bincount(t.ravel(), minlength=3 * (h - 1) + w)
  slot = np.zeros((h, w), np.int32)  # rank of each position within its diagonal
  seen = np.zeros(len(counts), np.int32)
  for r in range(h):
    slot[r] = seen[t[r]]
    seen[t[r]] += 1
  rr, cc = np.meshgrid(np.arange(h, dtype=np.int32), np.arange(w, dtype=np.int32), indexing="ij")
  if order == "wavefront":
    step = t.ravel()
    n_steps = len(counts)
  elif order == "raster":
    step = np.arange(h * w)
    n_steps = h * w
  else:
    raise ValueError(f"unknown context coding order {order!r}")
  rows = np.full((n_steps, int(counts.max())), -1, np.int32)
  cols = np.full_like(rows, -1)
  rows[step, slot.ravel()] = rr.ravel()
  cols[step, slot.ravel()] = cc.ravel()
  return rows, cols


@functools.partial(jax.jit, static_argnums=0)
def context_matrix(module, params) -> Array:
  """The context model's causal-tap matrix, gathered once per image instead of once per step."""
  return module.apply({"params": params}, method="context_matrix")


@functools.partial(jax.jit, static_argnums=(0, 10), donate_argnums=4)
def coding_step(module, params, matrix: Array, hyper: Array, y_pad: Array, y: Array, prev: tuple, rows: Array,
                cols: Array, scale_table: Array, entropy_rows: bool = True):
  """One step of a `schedule`: writes the previous step's y_hat, then evaluates this step's positions as a batch.

  matrix: `context_matrix(module, params)`; prev: (rows [B], cols [B], symbols [B,M], means [B,M]) of the previous
  step (rows -1: nothing to write); rows, cols [B]: this step's positions (-1 pads). y_pad [h+4, w+4, M] holds
  the decoded latents (donated). `entropy_rows`: the entropy parameters as matrix products (.jsc version 3) or
  as 1x1 convs (version 2).
  Returns (y_pad, scales, means, scale indices, proposed symbols round(y - mean)), all [B,M] but y_pad; pad
  rows have index 0. The same program serves every step, order, encoder and decoder (one compile per shape).
  """
  h, w, m = y.shape
  k = CONTEXT_KERNEL
  p = k // 2
  r_prev, c_prev, sym_prev, mean_prev = prev
  y_pad = y_pad.at[jnp.where(r_prev >= 0, r_prev + p, h + 2 * p), c_prev + p].set(
      sym_prev.astype(y.dtype) + mean_prev, mode="drop")  # pads point off the grid and are dropped
  valid = rows >= 0
  rs, cs = jnp.where(valid, rows, 0), jnp.where(valid, cols, 0)
  windows = jax.vmap(lambda i, j: jax.lax.dynamic_slice(y_pad, (i, j, 0), (k, k, m)))(rs, cs)
  scales, means = module.apply({"params": params}, hyper[rs, cs], windows, matrix, entropy_rows,
                               method="context_params_many")
  idx = jnp.where(valid[:, None], scale_index(scales, scale_table), 0)
  return y_pad, scales, means, idx, jnp.round(y[rs, cs] - means).astype(jnp.int32)


@jax.jit
def _bits(symbols: Array, means: Array, scales: Array, valid: Array) -> Array:
  """Estimated bits of the coded symbols [T,B,M] under their Gaussians (pad rows excluded)."""
  lik = gaussian_likelihood(symbols.astype(means.dtype) + means, means, scales)
  return -jnp.sum(jnp.where(valid[..., None], jnp.log2(lik), 0.0))


def _scheduled(module, params, hyper: Array, y: Array, scale_table: np.ndarray,
               host: Callable[[np.ndarray, np.ndarray], np.ndarray], order: str, estimate_bits: bool,
               entropy_rows: bool):
  """`run` for the batched orders: a host loop over the steps, one device call and one host call per step."""
  h, w, m = y.shape
  chex.assert_shape(hyper, (h, w, 2 * m))
  rows, cols = schedule(h, w, order)
  hyper, y, table = jnp.asarray(hyper), jnp.asarray(y), jnp.asarray(scale_table, jnp.float32)
  y_pad = jnp.zeros((h + CONTEXT_KERNEL - 1, w + CONTEXT_KERNEL - 1, m), y.dtype)
  matrix = context_matrix(module, params)
  params = {name: params[name] for name in CODING_SUBMODULES}  # all the step reads
  nothing = np.full(rows.shape[1], -1, np.int32)
  prev = (nothing, nothing, np.zeros((rows.shape[1], m), np.int32), jnp.zeros((rows.shape[1], m), y.dtype))
  chunks, coded = [], []
  for r, c in zip(rows, cols):
    y_pad, scales, means, idx, proposed = coding_step(module, params, matrix, hyper, y_pad, y, prev, r, c, table,
                                                      entropy_rows)
    valid = r >= 0
    idx_valid = np.asarray(idx)[valid]
    sym = np.zeros(proposed.shape, np.int32)
    sym[valid] = host(idx_valid, np.asarray(proposed)[valid])
    chunks.append((sym[valid], idx_valid))
    if estimate_bits:
      coded.append((sym, means, scales))
    prev = (r, c, sym, means)
  y_pad = coding_step(module, params, matrix, hyper, y_pad, y, prev, nothing, nothing, table, entropy_rows)[0]
  p = CONTEXT_KERNEL // 2
  bits = None
  if estimate_bits:
    syms, means, scales = (jnp.stack(a) for a in zip(*coded))
    bits = float(_bits(syms, means, scales, jnp.asarray(rows >= 0)))
  return np.asarray(y_pad)[p:p + h, p:p + w], chunks, bits


def run(module, params, hyper: Array, y: Array, scale_table: np.ndarray,
        host: Callable[[np.ndarray, np.ndarray], np.ndarray], order: str = "wavefront", estimate_bits: bool = True,
        entropy_rows: bool = True):
  """Codes one image's y [h,w,M] in `order` with `host` answering the symbol requests.

  host(scale indices [n,M], proposed symbols [n,M]) -> symbols [n,M], for the n positions of a step.
  Returns (y_hat [h,w,M], chunks, bits): `chunks` are the (symbols, scale indices) arrays of each host call,
  in the order the range coder sees them (one position per chunk in raster order, one diagonal in wavefront);
  bits is None unless `estimate_bits` (the decoder needs none). `entropy_rows` picks the format version's
  entropy-parameter arithmetic (`coding_step`; True: version 3); "serial" is version 1's program.
  """
  if order != "serial":
    return _scheduled(module, params, hyper, y, scale_table, host, order, estimate_bits, entropy_rows)
  with _LOCK:
    token = next(_COUNTER)
    _SESSIONS[token] = host
  try:
    y_hat, syms, idxs, bits = serial_pass(module, params, jnp.asarray(hyper), jnp.asarray(y), jnp.int32(token),
                                          jnp.asarray(scale_table, jnp.float32))
    return np.asarray(y_hat), list(zip(np.asarray(syms), np.asarray(idxs))), float(bits) if estimate_bits else None
  finally:
    with _LOCK:
      del _SESSIONS[token]


def echo(idx: np.ndarray, proposed: np.ndarray) -> np.ndarray:
  """The encoder's host function: the symbols are the ones the step computed."""
  del idx
  return proposed


class Decoding:
  """The decoder's host function: range-decodes one step's symbols with their scale indices (one coder call)."""

  def __init__(self, table_coder, decoder):
    self.coder, self.decoder, self.error = table_coder, decoder, None

  def __call__(self, idx: np.ndarray, proposed: np.ndarray) -> np.ndarray:
    if self.error is not None:
      return np.zeros_like(proposed)
    try:
      return self.coder.decode(self.decoder, idx)
    except (ValueError, RuntimeError, OverflowError, IndexError) as e:  # corrupt payload: report after the pass
      self.error = e
      return np.zeros_like(proposed)
