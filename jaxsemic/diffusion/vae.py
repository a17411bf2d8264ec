"""AutoencoderKL of Stable Diffusion in Flax linen (NHWC), named as diffusers.

`encode` gives the posterior (mean, logvar); `decode` maps a latent back to an image in [-1, 1].
`image_to_latent` / `latent_to_image` apply the config's scaling (and shift) factor, as the SD pipelines do.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.diffusion.blocks import UNetMidBlock2D, VAEBlock2D
from jaxsemic.diffusion.config import VAEConfig
from jaxsemic.diffusion.resnet import conv1x1, conv3x3

Dtype = jnp.dtype


class Encoder(nn.Module):
  """Image [B,H,W,3] -> posterior moments [B,H/f,W/f,2*latent] (before quant_conv)."""
  config: VAEConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    x = conv3x3(cfg.block_out_channels[0], self.dtype, 'conv_in')(x)
    for i, channels in enumerate(cfg.block_out_channels):
      last = i == len(cfg.block_out_channels) - 1
      x = VAEBlock2D(channels, cfg.layers_per_block, None if last else 'down', cfg.norm_num_groups,
                     dtype=self.dtype, name=f'down_blocks_{i}')(x)
    x = UNetMidBlock2D(cfg.block_out_channels[-1], cfg.norm_num_groups, dtype=self.dtype, name='mid_block')(x)
    x = nn.GroupNorm(cfg.norm_num_groups, epsilon=1e-6, dtype=self.dtype, name='conv_norm_out')(x)
    return conv3x3(2 * cfg.latent_channels, self.dtype, 'conv_out')(nn.silu(x))


class Decoder(nn.Module):
  """Latent [B,h,w,latent] (after post_quant_conv) -> image [B,fh,fw,3]."""
  config: VAEConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    cfg = self.config
    x = conv3x3(cfg.block_out_channels[-1], self.dtype, 'conv_in')(z)
    x = UNetMidBlock2D(cfg.block_out_channels[-1], cfg.norm_num_groups, dtype=self.dtype, name='mid_block')(x)
    reversed_channels = cfg.block_out_channels[::-1]
    for i, channels in enumerate(reversed_channels):
      last = i == len(reversed_channels) - 1
      x = VAEBlock2D(channels, cfg.layers_per_block + 1, None if last else 'up', cfg.norm_num_groups,
                     dtype=self.dtype, name=f'up_blocks_{i}')(x)
    x = nn.GroupNorm(cfg.norm_num_groups, epsilon=1e-6, dtype=self.dtype, name='conv_norm_out')(x)
    return conv3x3(cfg.out_channels, self.dtype, 'conv_out')(nn.silu(x))


class AutoencoderKL(nn.Module):
  """SD's KL autoencoder; `__call__` (used for init) encodes the posterior mean and decodes it."""
  config: VAEConfig
  dtype: Dtype = jnp.float32

  def setup(self):
    cfg = self.config
    self.encoder = Encoder(cfg, self.dtype)
    self.decoder = Decoder(cfg, self.dtype)
    if cfg.use_quant_conv:
      self.quant_conv = conv1x1(2 * cfg.latent_channels, self.dtype, 'quant_conv')
    if cfg.use_post_quant_conv:
      self.post_quant_conv = conv1x1(cfg.latent_channels, self.dtype, 'post_quant_conv')

  def encode(self, image: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Image in [-1, 1], [B,H,W,C] -> posterior (mean, logvar), each [B,H/f,W/f,latent]."""
    chex.assert_rank(image, 4)
    moments = self.encoder(image.astype(self.dtype))
    if self.config.use_quant_conv:
      moments = self.quant_conv(moments)
    mean, logvar = jnp.split(moments, 2, axis=-1)
    return mean, jnp.clip(logvar, -30.0, 20.0)

  def decode(self, z: jax.Array) -> jax.Array:
    """Latent [B,h,w,latent] (unscaled) -> image [B,fh,fw,C], nominally in [-1, 1]."""
    chex.assert_rank(z, 4)
    z = z.astype(self.dtype)
    if self.config.use_post_quant_conv:
      z = self.post_quant_conv(z)
    return self.decoder(z)

  def __call__(self, image: jax.Array) -> jax.Array:
    return self.decode(self.encode(image)[0])


def image_to_latent(vae: AutoencoderKL, params, image: jax.Array, rng: jax.Array | None = None) -> jax.Array:
  """Image in [-1, 1] -> scaled diffusion latent (posterior mean, or a sample when rng is given)."""
  mean, logvar = vae.apply({'params': params}, image, method=AutoencoderKL.encode)
  z = mean if rng is None else mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)
  return (z - vae.config.shift_factor) * vae.config.scaling_factor


def latent_to_image(vae: AutoencoderKL, params, latent: jax.Array) -> jax.Array:
  """Scaled diffusion latent -> image in [-1, 1] (not clipped)."""
  z = latent / vae.config.scaling_factor + vae.config.shift_factor
  return vae.apply({'params': params}, z, method=AutoencoderKL.decode)
