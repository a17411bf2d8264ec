"""Serial coding of a context model's latents (mbt2018 Sec. 3): one `lax.scan` step per position, under jit.

Each step reads the 5x5 causal neighbourhood of the latents decoded so far, computes (scale, mean) of the
current position, its scale indices, and gets its integer symbols from the host through `io_callback`: the
encoder's callback returns round(y - mean) (already computed in the step), the decoder's range-decodes them.
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


def run(module, params, hyper: Array, y: Array, scale_table: np.ndarray,
        host: Callable[[np.ndarray, np.ndarray], np.ndarray]):
  """`serial_pass` with `host` answering the symbol requests; returns its outputs as numpy arrays."""
  with _LOCK:
    token = next(_COUNTER)
    _SESSIONS[token] = host
  try:
    out = serial_pass(module, params, jnp.asarray(hyper), jnp.asarray(y), jnp.int32(token),
                      jnp.asarray(scale_table, jnp.float32))
    return jax.tree.map(np.asarray, out)
  finally:
    with _LOCK:
      del _SESSIONS[token]


def echo(idx: np.ndarray, proposed: np.ndarray) -> np.ndarray:
  """The encoder's host function: the symbols are the ones the step computed."""
  del idx
  return proposed


class Decoding:
  """The decoder's host function: range-decodes one position's symbols with its scale indices."""

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
