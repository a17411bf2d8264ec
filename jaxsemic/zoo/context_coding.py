"""Coding a context model's latents (mbt2018 Sec. 3) position by position, under jit, with host calls for symbols.

A position's (scale, mean) come from its 5x5 causal neighbourhood of already decoded latents, so decoding is
sequential; but only along the dependencies: all positions on one diagonal t = 3r + c depend only on earlier
diagonals (`schedule`), so the decoder walks the 3(h-1) + w diagonals instead of the h*w positions ("wavefront",
the .jsc format since version 2). Each step is one batched evaluation of its positions (`scheduled_pass`, one
`lax.scan` under jit, one compile per latent shape) and one host call that gets all of their integer symbols
through `io_callback`: the encoder's returns round(y - mean) (already computed in the step), the decoder's
range-decodes them with the step's scale indices. The "raster" schedule runs the same program one position per
step, each in the row it has in its diagonal, so both orders give the same numbers bit for bit (tested).
`serial_pass` is .jsc version 1's decoder: raster order, one unbatched evaluation per position.

Encoder and decoder run the very same jitted function with the same shapes, so the means and scale indices
they compute are the same numbers and the decoder stays in sync with the range coder.
"""

from __future__ import annotations

import functools
import itertools
import threading
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from jaxsemic.entropy.gaussian import gaussian_likelihood, scale_index
from jaxsemic.zoo.mbt2018 import CONTEXT_KERNEL

Array = jax.Array

# token -> host function (scale indices [M], proposed symbols [M]) -> symbols [M]. A token, not a closure, is
# passed to the jitted pass so that encoder and decoder share one compiled program.
_SESSIONS: dict[int, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
_LOCK = threading.Lock()
_COUNTER = itertools.count(1)


def _host_step(token, idx, proposed, valid=None):
  """Symbols of one step from the session's host function; with `valid` [B], of the valid rows only (0 elsewhere)."""
  fn = _SESSIONS[int(token)]
  if valid is None:
    return np.asarray(fn(np.asarray(idx), np.asarray(proposed)), np.int32)
  valid = np.asarray(valid)
  out = np.zeros(np.shape(proposed), np.int32)
  out[valid] = fn(np.asarray(idx)[valid], np.asarray(proposed)[valid])
  return out


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
  every position as the same row of the same program (`scheduled_pass`).
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
def scheduled_pass(module, params, hyper: Array, y: Array, rows: Array, cols: Array, token: Array,
                   scale_table: Array):
  """Codes the steps of a `schedule`; returns (y_hat [h,w,M], symbols [T,B,M], indices [T,B,M], bits).

  Per step, one batched evaluation of the step's positions (`context_params_many`) and one host call for all
  of their symbols; pad slots (row -1) are never written, and their symbols and indices are 0.
  """
  h, w, m = y.shape
  k = CONTEXT_KERNEL
  p = k // 2
  variables = {"params": params}

  def step(y_pad, rc):
    r, c = rc
    valid = r >= 0
    rs, cs = jnp.where(valid, r, 0), jnp.where(valid, c, 0)
    windows = jax.vmap(lambda i, j: jax.lax.dynamic_slice(y_pad, (i, j, 0), (k, k, m)))(rs, cs)
    scales, means = module.apply(variables, hyper[rs, cs], windows, method="context_params_many")
    idx = jnp.where(valid[:, None], scale_index(scales, scale_table), 0)
    proposed = jnp.round(y[rs, cs] - means).astype(jnp.int32)
    sym = io_callback(_host_step, jax.ShapeDtypeStruct(proposed.shape, jnp.int32), token, idx, proposed, valid)
    sym = jnp.where(valid[:, None], sym, 0)
    y_hat_px = sym.astype(y.dtype) + means
    bits = -jnp.sum(jnp.where(valid[:, None], jnp.log2(gaussian_likelihood(y_hat_px, means, scales)), 0.0))
    y_pad = y_pad.at[jnp.where(valid, r + p, h + 2 * p), c + p].set(y_hat_px, mode="drop")  # pads: off the grid
    return y_pad, (sym, idx, bits)

  y_pad = jnp.zeros((h + 2 * p, w + 2 * p, m), y.dtype)
  y_pad, (syms, idxs, bits) = jax.lax.scan(step, y_pad, (rows, cols))
  return y_pad[p:p + h, p:p + w], syms, idxs, jnp.sum(bits)


def run(module, params, hyper: Array, y: Array, scale_table: np.ndarray,
        host: Callable[[np.ndarray, np.ndarray], np.ndarray], order: str = "wavefront"):
  """Codes one image's y in `order` with `host` answering the symbol requests.

  Returns (y_hat [h,w,M], chunks, bits): `chunks` are the (symbols, scale indices) arrays of each host call,
  in the order the range coder sees them (one position per chunk in raster order, one diagonal in wavefront).
  """
  with _LOCK:
    token = next(_COUNTER)
    _SESSIONS[token] = host
  try:
    args = (jnp.asarray(hyper), jnp.asarray(y))
    table = jnp.asarray(scale_table, jnp.float32)
    if order == "serial":
      y_hat, syms, idxs, bits = serial_pass(module, params, *args, jnp.int32(token), table)
      chunks = list(zip(np.asarray(syms), np.asarray(idxs)))
    else:
      rows, cols = schedule(*y.shape[:2], order)
      y_hat, syms, idxs, bits = scheduled_pass(module, params, *args, jnp.asarray(rows), jnp.asarray(cols),
                                               jnp.int32(token), table)
      syms, idxs = np.asarray(syms), np.asarray(idxs)
      chunks = [(s[v], i[v]) for s, i, v in zip(syms, idxs, rows >= 0)]
    return np.asarray(y_hat), chunks, float(bits)
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
