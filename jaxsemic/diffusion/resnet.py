"""ResNet blocks, resamplers and timestep embeddings of the Stable Diffusion UNet and VAE (NHWC).

Attribute names mirror diffusers (`norm1`, `conv1`, `time_emb_proj`, ...) so that weight import is a
rename + transpose (see `jaxsemic.diffusion.weights`).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = jnp.dtype


def conv3x3(features: int, dtype: Dtype, name: str, stride: int = 1) -> nn.Conv:
  """A 3x3 convolution with PyTorch's symmetric padding of 1."""
  return nn.Conv(features, (3, 3), strides=(stride, stride), padding=((1, 1), (1, 1)), dtype=dtype,
                 name=name)


def conv1x1(features: int, dtype: Dtype, name: str) -> nn.Conv:
  """A 1x1 convolution."""
  return nn.Conv(features, (1, 1), padding='VALID', dtype=dtype, name=name)


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
