"""Down, mid and up blocks of the SD UNet / ControlNet / VAE, named as diffusers' unet_2d_blocks."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.diffusion.attention import Transformer2DModel, VAEAttention
from jaxsemic.diffusion.resnet import Downsample2D, ResnetBlock2D, Upsample2D

Dtype = jnp.dtype


class DownBlock2D(nn.Module):
  """`num_layers` ResNets (each optionally followed by a spatial transformer) and a stride-2 conv.

  Returns the block output and the skip tensors for the UNet up path (one per ResNet, plus the
  downsampled output when `add_downsample`).
  """
  out_channels: int
  num_layers: int
  add_downsample: bool
  cross_attention: bool = False
  heads: int = 8
  transformer_layers: int = 1
  use_linear_projection: bool = False
  groups: int = 32
  eps: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array, context: jax.Array | None
               ) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    skips = []
    for i in range(self.num_layers):
      x = ResnetBlock2D(self.out_channels, self.groups, self.eps, dtype=self.dtype, name=f'resnets_{i}')(x, temb)
      if self.cross_attention:
        x = Transformer2DModel(self.heads, self.out_channels // self.heads, self.transformer_layers,
                               self.use_linear_projection, self.groups, dtype=self.dtype,
                               name=f'attentions_{i}')(x, context)
      skips.append(x)
    if self.add_downsample:
      x = Downsample2D(self.out_channels, dtype=self.dtype, name='downsamplers_0')(x)
      skips.append(x)
    return x, tuple(skips)


class UpBlock2D(nn.Module):
  """`num_layers` ResNets on [x, skip] concatenations (each optionally with a transformer), then x2 up."""
  out_channels: int
  num_layers: int
  add_upsample: bool
  cross_attention: bool = False
  heads: int = 8
  transformer_layers: int = 1
  use_linear_projection: bool = False
  groups: int = 32
  eps: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, skips: Sequence[jax.Array], temb: jax.Array,
               context: jax.Array | None) -> jax.Array:
    skips = list(skips)
    for i in range(self.num_layers):
      x = jnp.concatenate([x, skips.pop()], axis=-1)
      x = ResnetBlock2D(self.out_channels, self.groups, self.eps, dtype=self.dtype, name=f'resnets_{i}')(x, temb)
      if self.cross_attention:
        x = Transformer2DModel(self.heads, self.out_channels // self.heads, self.transformer_layers,
                               self.use_linear_projection, self.groups, dtype=self.dtype,
                               name=f'attentions_{i}')(x, context)
    if self.add_upsample:
      x = Upsample2D(self.out_channels, dtype=self.dtype, name='upsamplers_0')(x)
    return x


class UNetMidBlock2DCrossAttn(nn.Module):
  """ResNet, then (transformer, ResNet) pairs, at the lowest resolution."""
  channels: int
  heads: int
  transformer_layers: int = 1
  use_linear_projection: bool = False
  groups: int = 32
  eps: float = 1e-5
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, temb: jax.Array, context: jax.Array) -> jax.Array:
    x = ResnetBlock2D(self.channels, self.groups, self.eps, dtype=self.dtype, name='resnets_0')(x, temb)
    x = Transformer2DModel(self.heads, self.channels // self.heads, self.transformer_layers,
                           self.use_linear_projection, self.groups, dtype=self.dtype,
                           name='attentions_0')(x, context)
    return ResnetBlock2D(self.channels, self.groups, self.eps, dtype=self.dtype, name='resnets_1')(x, temb)


class VAEBlock2D(nn.Module):
  """VAE block (diffusers DownEncoderBlock2D / UpDecoderBlock2D): ResNets without time embedding, then
  an asymmetrically padded stride-2 conv ('down') or nearest x2 + conv ('up') or nothing (None)."""
  out_channels: int
  num_layers: int
  resample: str | None
  groups: int = 32
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i in range(self.num_layers):
      x = ResnetBlock2D(self.out_channels, self.groups, 1e-6, use_time_emb=False, dtype=self.dtype,
                        name=f'resnets_{i}')(x)
    if self.resample == 'down':
      x = Downsample2D(self.out_channels, pad_right=True, dtype=self.dtype, name='downsamplers_0')(x)
    elif self.resample == 'up':
      x = Upsample2D(self.out_channels, dtype=self.dtype, name='upsamplers_0')(x)
    return x


class UNetMidBlock2D(nn.Module):
  """VAE mid block: ResNet, single-head self-attention, ResNet (no time embedding)."""
  channels: int
  groups: int = 32
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    resnet = lambda name: ResnetBlock2D(self.channels, self.groups, 1e-6, use_time_emb=False,
                                        dtype=self.dtype, name=name)
    x = resnet('resnets_0')(x)
    x = VAEAttention(self.channels, self.groups, dtype=self.dtype, name='attentions_0')(x)
    return resnet('resnets_1')(x)
