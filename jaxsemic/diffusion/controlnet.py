"""ControlNet for SD 1.x/2.x in Flax linen (NHWC), named as diffusers' ControlNetModel.

Two ways to bring the condition in (SEDIC Algorithm 1 uses the second, cf_j = VAE-encoder(I_j)):
- 'pixel': the standard ControlNet; a hint image [B, 8h, 8w, C] (8 = config.hint_factor) goes through `controlnet_cond_embedding`
  (small conv encoder ending in a zero conv) and is added to the conv_in output.
- 'latent': the IRControlNet variant of DiffBIR; a latent [B, h, w, C_c] is concatenated with the noisy
  latent before `conv_in` (config.in_channels = latent + conditioning_channels), no hint encoder.
The outputs are the zero-conv residuals for the UNet skips and mid block, times `conditioning_scale`.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.diffusion.config import UNetConfig
from jaxsemic.diffusion.resnet import conv, conv1x1, conv3x3
from jaxsemic.diffusion.unet import check_inputs, down_path, embed_time

Dtype = jnp.dtype
CONDITIONING = ('pixel', 'latent')


class ControlNetConditioningEmbedding(nn.Module):
  """Hint encoder: conv_in, pairs of (3x3, stride-2 3x3) convs with SiLU, zero-initialised conv_out."""
  out_channels: int
  block_out_channels: tuple[int, ...]
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, cond: jax.Array) -> jax.Array:
    x = nn.silu(conv3x3(self.block_out_channels[0], self.dtype, 'conv_in')(cond))
    for i in range(len(self.block_out_channels) - 1):
      x = nn.silu(conv3x3(self.block_out_channels[i], self.dtype, f'blocks_{2 * i}')(x))
      x = nn.silu(conv3x3(self.block_out_channels[i + 1], self.dtype, f'blocks_{2 * i + 1}', stride=2)(x))
    return conv(self.out_channels, 3, self.dtype, 'conv_out', kernel_init=nn.initializers.zeros)(x)


def zero_conv(features: int, dtype: Dtype, name: str) -> nn.Conv:
  """1x1 convolution initialised to zero (ControlNet's 'zero convolution')."""
  return conv1x1(features, dtype, name, kernel_init=nn.initializers.zeros)


class ControlNetModel(nn.Module):
  """(sample, timesteps, context, cond, conditioning_scale) -> (down residuals, mid residual)."""
  config: UNetConfig
  conditioning: str = 'pixel'
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, sample: jax.Array, timesteps: jax.Array, context: jax.Array, cond: jax.Array,
               conditioning_scale: float | jax.Array = 1.0) -> tuple[list[jax.Array], jax.Array]:
    cfg = self.config
    if self.conditioning not in CONDITIONING:
      raise ValueError(f'conditioning must be one of {CONDITIONING}, got {self.conditioning!r}')
    check_inputs(cfg, sample, context)
    chex.assert_rank(cond, 4)
    sample, context, cond = sample.astype(self.dtype), context.astype(self.dtype), cond.astype(self.dtype)
    temb = embed_time(cfg, timesteps, sample.shape[0], self.dtype)
    if self.conditioning == 'latent':
      chex.assert_equal_shape_prefix([sample, cond], 3)
      chex.assert_axis_dimension(cond, 3, cfg.conditioning_channels)
      chex.assert_axis_dimension(sample, 3, cfg.in_channels - cfg.conditioning_channels)
      x = conv3x3(cfg.block_out_channels[0], self.dtype, 'conv_in')(jnp.concatenate([sample, cond], -1))
    else:
      f = cfg.hint_factor
      chex.assert_shape(cond, (sample.shape[0], f * sample.shape[1], f * sample.shape[2], cfg.conditioning_channels))
      x = conv3x3(cfg.block_out_channels[0], self.dtype, 'conv_in')(sample)
      x = x + ControlNetConditioningEmbedding(cfg.block_out_channels[0], cfg.conditioning_embedding_out_channels,
                                              dtype=self.dtype, name='controlnet_cond_embedding')(cond)
    x, skips = down_path(cfg, x, temb, context, self.dtype)
    down = [zero_conv(s.shape[-1], self.dtype, f'controlnet_down_blocks_{i}')(s) * conditioning_scale
            for i, s in enumerate(skips)]
    mid = zero_conv(x.shape[-1], self.dtype, 'controlnet_mid_block')(x) * conditioning_scale
    return down, mid
