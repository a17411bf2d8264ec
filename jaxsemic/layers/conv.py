"""Convolutions with PyTorch/CompressAI padding, and upsampling without lhs-dilated convolutions.

XLA:CPU computes the weight gradient of `nn.ConvTranspose` (an lhs-dilated convolution) ~60x slower than a
plain convolution, so every transposed convolution here is written in polyphase form: one stride-1 convolution
producing s*s phases per output channel, then depth-to-space. The kernel is stored in the transposed-conv layout
[k, k, in, out] so PyTorch `ConvTranspose2d` weights map onto it by a transpose only.
"""

from __future__ import annotations

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


class Conv(nn.Module):
  """k x k convolution with symmetric padding k//2 (PyTorch's `Conv2d(..., padding=k//2)`)."""

  features: int
  kernel_size: int = 3
  stride: int = 1
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    p = self.kernel_size // 2
    return nn.Conv(self.features, (self.kernel_size,) * 2, strides=(self.stride,) * 2,
                   padding=((p, p), (p, p)), use_bias=self.use_bias, name="conv")(x)


def depth_to_space(x: Array, r: int) -> Array:
  """[B, H, W, C*r*r] -> [B, H*r, W*r, C], channel order (c, i, j) as PyTorch's `pixel_shuffle`."""
  b, h, w, c = x.shape
  chex.assert_equal(c % (r * r), 0)
  x = x.reshape(b, h, w, c // (r * r), r, r)
  x = x.transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, h * r, w * r, c // (r * r))


@functools.lru_cache(maxsize=None)
def polyphase_index(k: int, stride: int, padding: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
  """Tap map of a 1-D transposed conv in polyphase form.

  For output o = stride*i + r, `ConvTranspose` sums x[j] * w[t] over o = stride*j - padding + t, i.e.
  j = i + d with d = (r + padding - t) / stride. Returns (tap, valid) of shape [window, stride]: the kernel
  tap t feeding window offset d for phase r (valid=False where none does), and the (lo, hi) input padding.
  """
  ds = {}
  for r in range(stride):
    for t in range(k):
      if (r + padding - t) % stride == 0:
        ds[(r, (r + padding - t) // stride)] = t
  d_min = min(d for _, d in ds)
  d_max = max(d for _, d in ds)
  window = d_max - d_min + 1
  tap = np.zeros((window, stride), np.int32)
  valid = np.zeros((window, stride), bool)
  for (r, d), t in ds.items():
    tap[d - d_min, r] = t
    valid[d - d_min, r] = True
  return tap, valid, (-d_min, d_max)


class TransposedConv(nn.Module):
  """`ConvTranspose2d(k, stride, padding=k//2, output_padding=stride-1)` computed as conv + depth-to-space.

  Output size is exactly stride * input size. The parameter `kernel` has the shape [k, k, in, out], equal to
  PyTorch's weight [in, out, k, k] transposed by (2, 3, 0, 1).
  """

  features: int
  kernel_size: int = 5
  stride: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k, s, cin = self.kernel_size, self.stride, x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(in_axis=-1, out_axis=-2),
                        (k, k, cin, self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    tap, valid, pad = polyphase_index(k, s, k // 2)
    # Gather a [win, win, cin, out, s, s] kernel: entry (dy, dx, ci, co, ry, rx) = w[tap[dy,ry], tap[dx,rx]].
    w = kernel[tap[:, None, :, None], tap[None, :, None, :]]  # [win, win, s, s, cin, out]
    mask = (valid[:, None, :, None] & valid[None, :, None, :])[..., None, None]
    w = jnp.where(mask, w, 0.0).transpose(0, 1, 4, 5, 2, 3)
    win = tap.shape[0]
    w = w.reshape(win, win, cin, self.features * s * s)
    y = jax.lax.conv_general_dilated(x, w.astype(x.dtype), (1, 1), (pad, pad),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return depth_to_space(y, s) + bias.astype(x.dtype)


class SubpelConv(nn.Module):
  """Sub-pixel convolution (Shi et al. 2016): conv to out*r*r channels, then pixel shuffle."""

  features: int
  kernel_size: int = 3
  upscale: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = Conv(self.features * self.upscale ** 2, self.kernel_size, name="conv")(x)
    return depth_to_space(y, self.upscale)
