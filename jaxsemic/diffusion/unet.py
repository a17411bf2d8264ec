"""UNet2DConditionModel of Stable Diffusion 1.x / 2.x in Flax linen (NHWC), named as diffusers.

`UNet2DConditionModel(config)(sample, timesteps, context)` predicts the noise (or v) of a latent.
ControlNet residuals are added to the skip connections and the mid block output when given.
`cross_attention_maps` runs the forward pass and returns chosen cross-attention probabilities
(SEDIC Sec. III-B: A_{m,k} of eq. 2), differentiable with respect to the latent.
"""

from collections.abc import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.diffusion.attention import ATTENTION_COLLECTION
from jaxsemic.diffusion.blocks import DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D
from jaxsemic.diffusion.config import UNetConfig
from jaxsemic.diffusion.resnet import TimestepEmbedding, conv3x3, timestep_embedding

Dtype = jnp.dtype


def embed_time(cfg: UNetConfig, timesteps: jax.Array, batch: int, dtype: Dtype) -> jax.Array:
  """Sinusoidal projection + `time_embedding` MLP; call inside a compact method (binds to the caller)."""
  timesteps = jnp.broadcast_to(jnp.asarray(timesteps, jnp.float32).reshape(-1), (batch,))
  emb = timestep_embedding(timesteps, cfg.block_out_channels[0], cfg.flip_sin_to_cos, cfg.freq_shift)
  return TimestepEmbedding(cfg.time_embed_dim, dtype=dtype, name='time_embedding')(emb.astype(dtype))


def down_path(cfg: UNetConfig, x: jax.Array, temb: jax.Array, context: jax.Array, dtype: Dtype
              ) -> tuple[jax.Array, list[jax.Array]]:
  """`down_blocks_*` + `mid_block` on the conv_in output; returns (mid output, skip tensors incl. x)."""
  skips = [x]
  n = len(cfg.block_out_channels)
  for i, block_type in enumerate(cfg.down_block_types):
    x, block_skips = DownBlock2D(
        cfg.block_out_channels[i], cfg.layers_per_block, add_downsample=i < n - 1,
        cross_attention=block_type.startswith('CrossAttn'), heads=cfg.heads[i],
        transformer_layers=cfg.transformer_layers_per_block[i], use_linear_projection=cfg.use_linear_projection,
        groups=cfg.norm_num_groups, eps=cfg.norm_eps, dtype=dtype, name=f'down_blocks_{i}')(x, temb, context)
    skips.extend(block_skips)
  x = UNetMidBlock2DCrossAttn(cfg.block_out_channels[-1], cfg.heads[-1], cfg.transformer_layers_per_block[-1],
                              cfg.use_linear_projection, cfg.norm_num_groups, cfg.norm_eps, dtype=dtype,
                              name='mid_block')(x, temb, context)
  return x, skips


def check_inputs(cfg: UNetConfig, sample: jax.Array, context: jax.Array) -> None:
  """Shape checks at the model boundary."""
  chex.assert_rank(sample, 4)
  chex.assert_rank(context, 3)
  chex.assert_axis_dimension(context, 2, cfg.cross_attention_dim)
  factor = 2 ** (len(cfg.block_out_channels) - 1)
  if sample.shape[1] % factor or sample.shape[2] % factor:
    raise ValueError(f'latent height and width must be multiples of {factor}, got {sample.shape[1:3]}')


class UNet2DConditionModel(nn.Module):
  """The SD denoiser: sample [B,h,w,C_in], timesteps [] or [B], context [B,L,D] -> [B,h,w,C_out]."""
  config: UNetConfig
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, sample: jax.Array, timesteps: jax.Array, context: jax.Array,
               down_residuals: Sequence[jax.Array] | None = None,
               mid_residual: jax.Array | None = None) -> jax.Array:
    cfg = self.config
    check_inputs(cfg, sample, context)
    sample, context = sample.astype(self.dtype), context.astype(self.dtype)
    temb = embed_time(cfg, timesteps, sample.shape[0], self.dtype)
    x = conv3x3(cfg.block_out_channels[0], self.dtype, 'conv_in')(sample)
    x, skips = down_path(cfg, x, temb, context, self.dtype)
    if down_residuals is not None:
      if len(down_residuals) != len(skips):
        raise ValueError(f'expected {len(skips)} ControlNet down residuals, got {len(down_residuals)}')
      skips = [s + r.astype(s.dtype) for s, r in zip(skips, down_residuals)]
    if mid_residual is not None:
      x = x + mid_residual.astype(x.dtype)
    n = len(cfg.block_out_channels)
    rev_channels = cfg.block_out_channels[::-1]
    for i, block_type in enumerate(cfg.up_block_types):
      num = cfg.layers_per_block + 1
      block_skips, skips = skips[-num:], skips[:-num]
      x = UpBlock2D(rev_channels[i], num, add_upsample=i < n - 1, cross_attention=block_type.startswith('CrossAttn'),
                    heads=cfg.heads[::-1][i], transformer_layers=cfg.transformer_layers_per_block[::-1][i],
                    use_linear_projection=cfg.use_linear_projection, groups=cfg.norm_num_groups,
                    eps=cfg.norm_eps, dtype=self.dtype, name=f'up_blocks_{i}')(x, block_skips, temb, context)
    x = nn.GroupNorm(cfg.norm_num_groups, epsilon=cfg.norm_eps, dtype=self.dtype, name='conv_norm_out')(x)
    return conv3x3(cfg.out_channels, self.dtype, 'conv_out')(nn.silu(x))


def attention_layer_name(path: tuple[str, ...]) -> str:
  """Flax path ('up_blocks_1', ..., 'attn2') -> diffusers name 'up_blocks.1.....attn2'."""
  parts = []
  for part in path:
    head, _, tail = part.rpartition('_')
    parts.append(f'{head}.{tail}' if head and tail.isdigit() else part)
  return '.'.join(parts)


def collect_attention(collection: dict, layers: Sequence[str] | None = None) -> dict[str, jax.Array]:
  """Flatten a sown 'attention' collection to {diffusers layer name: probs [B, heads, h*w, L]}."""
  everything = {}
  for path, value in jax.tree_util.tree_flatten_with_path(collection, is_leaf=lambda v: isinstance(v, tuple))[0]:
    everything[attention_layer_name(tuple(p.key for p in path)[:-1])] = value[0]  # drop trailing 'probs'
  if layers is None:
    return everything
  missing = [name for name in layers if name not in everything]
  if missing:
    raise KeyError(f'no cross-attention layer named {missing[0]!r}; known: {", ".join(sorted(everything))}')
  return {name: everything[name] for name in layers}


def cross_attention_maps(unet: UNet2DConditionModel, params, sample: jax.Array, timesteps: jax.Array,
                         context: jax.Array, layers: Sequence[str] | None = None,
                         **residuals) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Run the UNet and return (output, {layer name: cross-attention probs [B, heads, h*w, L]}).

  `layers` are diffusers names such as 'up_blocks.1.attentions.0.transformer_blocks.0.attn2'
  (None = all). Under jit, maps of layers not asked for are dropped by XLA.
  """
  out, state = unet.apply({'params': params}, sample, timesteps, context, mutable=[ATTENTION_COLLECTION],
                          **residuals)
  return out, collect_attention(state[ATTENTION_COLLECTION], layers)
