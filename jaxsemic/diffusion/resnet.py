"""ResNet blocks, resamplers and timestep embeddings of the Stable Diffusion UNet and VAE (NHWC).

Attribute names mirror diffusers (`norm1`, `conv1`, `time_emb_proj`, ...) so that weight import is a
rename + transpose (see `jaxsemic.diffusion.weights`).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.layers.conv import xla_conv

Dtype = jnp.dtype


def lax_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 NHWC convolution of an odd square HWIO kernel with symmetric 'same' padding (XLA's)."""
  p = (kernel.shape[0] - 1) // 2
  return xla_conv(x, kernel, 1, ((p, p), (p, p)))


def input_grad_as_dot(dy: jax.Array, kernel: jax.Array) -> jax.Array:
  """d(lax_conv(x, kernel))/dx applied to dy, as one matmul against the kernel as stored, then col2im.

  XLA:CPU computes the input gradient as a convolution with a flipped, transposed copy of the kernel, which it
  writes out on every call (3.0 GiB per SD-1.5 guidance gradient); here dy [.., O] times kernel[(k*k*I), O]^T
  gives every tap's contribution at once, and the k*k shifted slices are summed.
  """
  b, h, w, o = dy.shape
  k, _, i, _ = kernel.shape
  cols = jax.lax.dot_general(dy.reshape(b * h * w, o), kernel.reshape(k * k * i, o), (((1,), (1,)), ((), ())))
  if k == 1:
    return cols.reshape(b, h, w, i)
  p = (k - 1) // 2
  cols = jnp.pad(cols.reshape(b, h, w, k, k, i), ((0, 0), (p, p), (p, p), (0, 0), (0, 0), (0, 0)))
  # x[y, x'] feeds output (y + p - a, x' + p - c) through tap (a, c): sum the k*k shifted tap planes
  return sum(cols[:, 2 * p - a: 2 * p - a + h, 2 * p - c: 2 * p - c + w, a, c] for a in range(k) for c in range(k))


def conv_as_dot(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax_conv` as im2col and one matmul against the kernel as stored ([k*k*I, O])."""
  b, h, w, i = x.shape
  k = kernel.shape[0]
  p = (k - 1) // 2
  padded = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  cols = jnp.concatenate([padded[:, a: a + h, c: c + w] for a in range(k) for c in range(k)], axis=-1)
  return (cols.reshape(b * h * w, k * k * i) @ kernel.reshape(k * k * i, -1)).reshape(b, h, w, -1)


def kernel_bound(shape: tuple[int, ...], out_channels: int) -> bool:
  """True where an NHWC image has no more pixels than the kernel has output channels (SD's 8x8 and 16x16
  levels): there XLA:CPU's convolutions are bound by the kernel's memory traffic and the matmul forms win."""
  return shape[1] * shape[2] <= out_channels


@jax.custom_vjp
def same_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax_conv`, as matmuls where the kernel outweighs the image, without XLA's per-call kernel copy.

  Where `kernel_bound`, forward `conv_as_dot` (measured 1.4-4x faster than XLA:CPU's convolution at 8x8 and
  16x16 with 1280 channels) and backward `input_grad_as_dot` (3-5x); the backward of 1x1 kernels is always
  the matmul. Elsewhere XLA's (at 32x32 and 64x64 its convolutions win). The kernel gradient is XLA's.
  """
  return conv_as_dot(x, kernel) if kernel_bound(x.shape, kernel.shape[-1]) else lax_conv(x, kernel)


def _same_conv_fwd(x: jax.Array, kernel: jax.Array):
  return same_conv(x, kernel), (x, kernel)


def _same_conv_bwd(residuals, dy: jax.Array):
  x, kernel = residuals
  if kernel.shape[0] == 1 or kernel_bound(dy.shape, dy.shape[3]):
    dx = input_grad_as_dot(dy, kernel).astype(x.dtype)
  else:
    dx = jax.vjp(lambda x: lax_conv(x, kernel), x)[1](dy)[0]
  dkernel = jax.vjp(lambda k: lax_conv(x, k), kernel)[1](dy)[0]
  return dx, dkernel


same_conv.defvjp(_same_conv_fwd, _same_conv_bwd)


def conv_general_dilated(x, kernel, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None) -> jax.Array:
  """`lax.conv_general_dilated` for `nn.Conv`, routed to `same_conv` on CPU for stride-1 'same' odd square kernels.

  Only on CPU, where it was measured: elsewhere (cuDNN, TPU) XLA's own convolution and its VJP stay.
  """
  k = kernel.shape[0]
  plain = (jax.default_backend() == "cpu" and x.ndim == 4 and kernel.shape[:2] == (k, k) and k % 2 == 1
           and tuple(window_strides) == (1, 1)
           and [tuple(p) for p in padding] == [((k - 1) // 2,) * 2] * 2 and feature_group_count == 1
           and not any(d != 1 for d in (lhs_dilation or ()) + (rhs_dilation or ())) and precision is None
           and tuple(dimension_numbers.lhs_spec) == (0, 3, 1, 2) and tuple(dimension_numbers.rhs_spec) == (3, 2, 0, 1))
  if plain:
    return same_conv(x, kernel)
  return jax.lax.conv_general_dilated(x, kernel, window_strides, padding, lhs_dilation, rhs_dilation,
                                      dimension_numbers, feature_group_count, precision=precision)


def conv(features: int, size: int, dtype: Dtype, name: str, stride: int = 1, **kwargs) -> nn.Conv:
  """A size x size convolution with PyTorch's symmetric padding (size - 1) / 2 (input gradient: `same_conv`)."""
  p = (size - 1) // 2
  return nn.Conv(features, (size, size), strides=(stride, stride), padding=((p, p), (p, p)), dtype=dtype,
                 conv_general_dilated=conv_general_dilated, name=name, **kwargs)


def conv3x3(features: int, dtype: Dtype, name: str, stride: int = 1) -> nn.Conv:
  """A 3x3 convolution with PyTorch's symmetric padding of 1."""
  return conv(features, 3, dtype, name, stride)


def conv1x1(features: int, dtype: Dtype, name: str, **kwargs) -> nn.Conv:
  """A 1x1 convolution."""
  return conv(features, 1, dtype, name, **kwargs)


def timestep_embedding(timesteps: jax.Array, dim: int, flip_sin_to_cos: bool = True,
                       freq_shift: float = 0.0, max_period: float = 10000.0) -> jax.Array:
  """Sinusoidal embedding of (possibly fractional) timesteps [B] -> [B, dim], as diffusers' Timesteps."""
  half = dim // 2
  exponent = -math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / (half - freq_shift)
  args = timesteps.astype(jnp.float32)[:, None] * jnp.exp(exponent)[None, :]
  sin, cos = jnp.sin(args), jnp.cos(args)
  emb = jnp.concatenate([cos, sin] if flip_sin_to_cos else [sin, cos], axis=-1)
  if dim % 2:
    emb = jnp.pad(emb, ((0, 0), (0, 1)))
  return emb


class TimestepEmbedding(nn.Module):
  """Two-layer MLP on the sinusoidal embedding (diffusers `time_embedding`)."""
  time_embed_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, emb: jax.Array) -> jax.Array:
    emb = nn.Dense(self.time_embed_dim, dtype=self.dtype, name='linear_1')(emb)
    return nn.Dense(self.time_embed_dim, dtype=self.dtype, name='linear_2')(nn.silu(emb))


class ResnetBlock2D(nn.Module):
  """GroupNorm-SiLU-Conv twice, with an optional time-embedding shift and a 1x1 shortcut."""
  out_channels: int
  groups: int = 32
  eps: float = 1e-5
  use_time_emb: bool = True
  output_scale_factor: float = 1.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array | None = None) -> jax.Array:
    h = nn.GroupNorm(self.groups, epsilon=self.eps, dtype=self.dtype, name='norm1')(x)
    h = conv3x3(self.out_channels, self.dtype, 'conv1')(nn.silu(h))
    if self.use_time_emb:
      t = nn.Dense(self.out_channels, dtype=self.dtype, name='time_emb_proj')(nn.silu(temb))
      h = h + t[:, None, None, :]
    h = nn.GroupNorm(self.groups, epsilon=self.eps, dtype=self.dtype, name='norm2')(h)
    h = conv3x3(self.out_channels, self.dtype, 'conv2')(nn.silu(h))
    if x.shape[-1] != self.out_channels:
      x = conv1x1(self.out_channels, self.dtype, 'conv_shortcut')(x)
    return (x + h) / self.output_scale_factor


class Downsample2D(nn.Module):
  """Stride-2 3x3 convolution; `pad_right` gives the VAE's asymmetric (0, 1) padding."""
  out_channels: int
  pad_right: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    padding = ((0, 1), (0, 1)) if self.pad_right else ((1, 1), (1, 1))
    return nn.Conv(self.out_channels, (3, 3), strides=(2, 2), padding=padding, dtype=self.dtype,
                   name='conv')(x)


class Upsample2D(nn.Module):
  """Nearest-neighbour x2 upsampling followed by a 3x3 convolution."""
  out_channels: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return conv3x3(self.out_channels, self.dtype, 'conv')(x)
