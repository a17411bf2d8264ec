"""SSIM and multi-scale SSIM (Wang, Simoncelli, Bovik 2003) in JAX.

Follows the conventions CompressAI's published results use (pytorch_msssim): an 11-tap Gaussian
window with σ = 1.5 applied without padding ("valid"), K1 = 0.01, K2 = 0.03, five scales with the
published weights, 2x2 average pooling between scales (odd sizes zero-padded on both sides, pad
counted in the average), negative contrast-structure terms clipped at 0, channels averaged last.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

# Exponents of the five scales, Wang et al. 2003, Section 3.2.
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = SIGMA) -> np.ndarray:
  """Normalised 1-D Gaussian taps centred on the middle tap."""
  t = np.arange(size, dtype=np.float64) - (size - 1) / 2
  g = np.exp(-(t**2) / (2 * sigma**2))
  return (g / g.sum()).astype(np.float32)


def _blur(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Separable valid Gaussian filter of every channel: [B,H,W,C] -> [B,H-10,W-10,C].

  Written as a sum of shifted slices: XLA's CPU depthwise convolution is ~100x slower here.
  """
  n = len(taps)
  h, w = x.shape[1] - n + 1, x.shape[2] - n + 1
  x = sum(float(t) * x[:, i:i + h] for i, t in enumerate(taps))
  return sum(float(t) * x[:, :, i:i + w] for i, t in enumerate(taps))


def _ssim_terms(x: jax.Array, y: jax.Array, data_range: float) -> tuple[jax.Array, jax.Array]:
  """Per-channel mean SSIM and mean contrast-structure term: [B,C] each."""
  taps = gaussian_window()
  c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
  c = x.shape[-1]
  moments = _blur(jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1), taps)  # one pass
  mu_x, mu_y, xx, yy, xy = (moments[..., i * c:(i + 1) * c] for i in range(5))
  var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
  cs_map = (2 * cov + c2) / (var_x + var_y + c2)
  luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
  return jnp.mean(luminance * cs_map, axis=(1, 2)), jnp.mean(cs_map, axis=(1, 2))


def _avg_pool2(x: jax.Array) -> jax.Array:
  """2x2 mean pooling, stride 2; odd sizes get one zero row/column on both sides first."""
  ph, pw = x.shape[1] % 2, x.shape[2] % 2
  x = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  s = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
  return s / 4.0


def _check(x: jax.Array, y: jax.Array, min_side: int) -> None:
  chex.assert_equal_shape((x, y))
  chex.assert_rank(x, 4)
  if min(x.shape[1:3]) < min_side:
    raise ValueError(f"images must be at least {min_side} px on each side, got {x.shape[1:3]}")


@functools.partial(jax.jit, static_argnames="data_range")
def ssim(x: jax.Array, y: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Single-scale SSIM per image (channel mean): [B,H,W,C] x2 -> [B]."""
  _check(x, y, WINDOW_SIZE)
  s, _ = _ssim_terms(x.astype(jnp.float32), y.astype(jnp.float32), data_range)
  return jnp.mean(s, axis=-1)


@functools.partial(jax.jit, static_argnames=("data_range", "weights"))
def ms_ssim(x: jax.Array, y: jax.Array, data_range: float = 1.0,
            weights: tuple[float, ...] = MSSSIM_WEIGHTS) -> jax.Array:
  """MS-SSIM per image: [B,H,W,C] x2 -> [B]; needs sides > (11 - 1) * 2^(scales - 1)."""
  _check(x, y, (WINDOW_SIZE - 1) * 2 ** (len(weights) - 1) + 1)
  x, y = x.astype(jnp.float32), y.astype(jnp.float32)
  factors = []
  for level in range(len(weights)):
    s, cs = _ssim_terms(x, y, data_range)
    if level < len(weights) - 1:
      factors.append(jax.nn.relu(cs))
      x, y = _avg_pool2(x), _avg_pool2(y)
  factors.append(jax.nn.relu(s))
  stacked = jnp.stack(factors)  # [levels, B, C]
  w = jnp.asarray(weights, jnp.float32).reshape(-1, 1, 1)
  return jnp.mean(jnp.prod(stacked**w, axis=0), axis=-1)
