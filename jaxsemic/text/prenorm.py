"""Pre-LayerNorm transformer blocks shared by CLIP (text and vision) and BLIP's ViT (HF parameter names).

x = x + Attn(LN1(x)); x = x + fc2(act(fc1(LN2(x)))). CLIP names the attention projections
`q_proj/k_proj/v_proj/out_proj`; BLIP fuses them into `qkv` (channels [q | k | v]) and `projection`.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.text.attention import dot_product_attention
from jaxsemic.text.bert import ACTIVATIONS


@dataclasses.dataclass(frozen=True)
class BlockConfig:
  """Width, depth and numerics of a pre-LN transformer stack."""
  hidden_size: int
  intermediate_size: int
  num_hidden_layers: int
  num_attention_heads: int
  hidden_act: str = "quick_gelu"
  layer_norm_eps: float = 1e-5
  fused_qkv: bool = False  # BLIP vision


class SelfAttention(nn.Module):
  """Multi-head self-attention with CLIP (separate) or BLIP (fused) projections."""
  config: BlockConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    c = self.config
    if c.fused_qkv:
      q, k, v = jnp.split(nn.Dense(3 * c.hidden_size, name="qkv")(x), 3, axis=-1)
      out_name = "projection"
    else:
      q, k, v = (nn.Dense(c.hidden_size, name=f"{n}_proj")(x) for n in "qkv")
      out_name = "out_proj"
    h = dot_product_attention(q, k, v, mask, c.num_attention_heads)
    return nn.Dense(c.hidden_size, name=out_name)(h)


class MLP(nn.Module):
  """fc1 -> activation -> fc2."""
  config: BlockConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = ACTIVATIONS[self.config.hidden_act](nn.Dense(self.config.intermediate_size, name="fc1")(x))
    return nn.Dense(self.config.hidden_size, name="fc2")(h)


class EncoderLayer(nn.Module):
  """One pre-LN block (HF `CLIPEncoderLayer` / `BlipEncoderLayer`)."""
  config: BlockConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
    eps = self.config.layer_norm_eps
    x = x + SelfAttention(self.config, name="self_attn")(nn.LayerNorm(epsilon=eps, name="layer_norm1")(x), mask)
    return x + MLP(self.config, name="mlp")(nn.LayerNorm(epsilon=eps, name="layer_norm2")(x))


class Encoder(nn.Module):
  """`encoder.layers_i` stack; returns the final states and every intermediate one (input first)."""
  config: BlockConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    states = [x]
    for i in range(self.config.num_hidden_layers):
      x = EncoderLayer(self.config, name=f"layers_{i}")(x, mask)
      states.append(x)
    return x, tuple(states)


def block_config(d: dict, **overrides) -> BlockConfig:
  """BlockConfig from a HF text/vision config dict (unknown keys ignored)."""
  names = {f.name for f in dataclasses.fields(BlockConfig)}
  return BlockConfig(**{**{k: v for k, v in d.items() if k in names}, **overrides})
