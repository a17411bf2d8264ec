"""Attention layers of the SD UNet (spatial transformer) and the VAE mid block, NHWC.

Cross-attention probabilities are sown into the 'attention' collection under the layer's own path
(`...transformer_blocks_0/attn2/probs`), so a caller that asks for `mutable=['attention']` gets them as
ordinary differentiable outputs of the forward pass (SEDIC Sec. III-B, eq. 2 needs dE/dz through them).
Use `jaxsemic.diffusion.unet.cross_attention_maps` to select layers by their diffusers name.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = jnp.dtype
ATTENTION_COLLECTION = 'attention'
QUERY_CHUNK = 1024  # query rows per step of low-memory self-attention


def softmax32(logits: jax.Array) -> jax.Array:
  """Softmax over the last axis in at least float32 (bf16 logits are upcast, float64 kept)."""
  return jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1)


def attend(q: jax.Array, k: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Scaled dot-product attention on [B, N, heads, d] -> (out [B, N, heads, d], probs [B, heads, N, L])."""
  probs = softmax32(jnp.einsum('bqhd,bkhd->bhqk', q, k) * (q.shape[-1] ** -0.5))
  return jnp.einsum('bhqk,bkhd->bqhd', probs.astype(v.dtype), v), probs


def attend_low_memory(q: jax.Array, k: jax.Array, v: jax.Array, chunk: int = QUERY_CHUNK) -> jax.Array:
  """`attend` without keeping [heads, N, L] maps: query chunks in sequence, each recomputed in backward.

  Same result as `attend(q, k, v)[0]`; bounds the memory of 64x64-latent self-attention (and its gradient).
  """
  n = q.shape[1]
  if n <= chunk or n % chunk:
    return jax.checkpoint(lambda *qkv: attend(*qkv)[0])(q, k, v)
  chunks = q.reshape(q.shape[0], n // chunk, chunk, *q.shape[2:]).swapaxes(0, 1)
  out = jax.lax.map(jax.checkpoint(lambda qc: attend(qc, k, v)[0]), chunks)
  return out.swapaxes(0, 1).reshape(q.shape[0], n, *out.shape[3:])


class Attention(nn.Module):
  """Multi-head (cross-)attention with diffusers' `to_q/to_k/to_v/to_out.0` projections."""
  heads: int
  dim_head: int
  out_dim: int
  qkv_bias: bool = False
  sow_probs: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, context: jax.Array | None = None) -> jax.Array:
    """x: [B, N, C]; context: [B, L, D] (None = self-attention) -> [B, N, out_dim]."""
    context = x if context is None else context
    inner = self.heads * self.dim_head
    q = nn.Dense(inner, use_bias=self.qkv_bias, dtype=self.dtype, name='to_q')(x)
    k = nn.Dense(inner, use_bias=self.qkv_bias, dtype=self.dtype, name='to_k')(context)
    v = nn.Dense(inner, use_bias=self.qkv_bias, dtype=self.dtype, name='to_v')(context)
    split = lambda t: t.reshape(t.shape[0], t.shape[1], self.heads, self.dim_head)
    if self.sow_probs:
      out, probs = attend(split(q), split(k), split(v))
      self.sow(ATTENTION_COLLECTION, 'probs', probs)
    else:
      out = attend_low_memory(split(q), split(k), split(v))
    out = out.reshape(out.shape[0], out.shape[1], inner)
    return nn.Dense(self.out_dim, dtype=self.dtype, name='to_out_0')(out)


class GEGLU(nn.Module):
  """Gated GELU projection: value * gelu(gate) with exact (erf) GELU."""
  inner_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    value, gate = jnp.split(nn.Dense(2 * self.inner_dim, dtype=self.dtype, name='proj')(x), 2, axis=-1)
    return value * nn.gelu(gate, approximate=False)


class FeedForward(nn.Module):
  """diffusers FeedForward with GEGLU: `net.0` (GEGLU), `net.1` (dropout), `net.2` (Linear)."""
  dim: int
  mult: int = 4
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = GEGLU(self.dim * self.mult, dtype=self.dtype, name='net_0')(x)
    return nn.Dense(self.dim, dtype=self.dtype, name='net_2')(x)


class BasicTransformerBlock(nn.Module):
  """Pre-LayerNorm self-attention, cross-attention and GEGLU feed-forward, each with a residual."""
  dim: int
  heads: int
  dim_head: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, context: jax.Array) -> jax.Array:
    norm = lambda name: nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name=name)
    attn = lambda name, sow: Attention(self.heads, self.dim_head, self.dim, sow_probs=sow,
                                       dtype=self.dtype, name=name)
    x = attn('attn1', False)(norm('norm1')(x)) + x
    x = attn('attn2', True)(norm('norm2')(x), context) + x
    return FeedForward(self.dim, dtype=self.dtype, name='ff')(norm('norm3')(x)) + x


class Transformer2DModel(nn.Module):
  """Spatial transformer: GroupNorm, proj_in (1x1 conv or linear), transformer blocks, proj_out, residual."""
  heads: int
  dim_head: int
  num_layers: int = 1
  use_linear_projection: bool = False
  groups: int = 32
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, context: jax.Array) -> jax.Array:
    """x: [B, H, W, C]; context: [B, L, D] -> [B, H, W, C]."""
    b, h, w, c = x.shape
    inner = self.heads * self.dim_head
    proj = lambda n, name: (nn.Dense(n, dtype=self.dtype, name=name) if self.use_linear_projection
                            else nn.Conv(n, (1, 1), dtype=self.dtype, name=name))
    hidden = nn.GroupNorm(self.groups, epsilon=1e-6, dtype=self.dtype, name='norm')(x)
    hidden = proj(inner, 'proj_in')(hidden).reshape(b, h * w, inner)  # 1x1 conv == per-pixel linear
    for i in range(self.num_layers):
      hidden = BasicTransformerBlock(inner, self.heads, self.dim_head, dtype=self.dtype,
                                     name=f'transformer_blocks_{i}')(hidden, context)
    hidden = proj(c, 'proj_out')(hidden.reshape(b, h, w, inner))
    return hidden + x


class VAEAttention(nn.Module):
  """Single-head spatial self-attention of the VAE mid block (group_norm inside, residual added)."""
  channels: int
  groups: int = 32
  eps: float = 1e-6
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    hidden = nn.GroupNorm(self.groups, epsilon=self.eps, dtype=self.dtype, name='group_norm')(x)
    hidden = hidden.reshape(b, h * w, c)
    q = nn.Dense(c, dtype=self.dtype, name='to_q')(hidden)
    k = nn.Dense(c, dtype=self.dtype, name='to_k')(hidden)
    v = nn.Dense(c, dtype=self.dtype, name='to_v')(hidden)
    logits = jnp.einsum('bqc,bkc->bqk', q, k) * (c ** -0.5)
    probs = softmax32(logits).astype(v.dtype)
    out = nn.Dense(c, dtype=self.dtype, name='to_out_0')(jnp.einsum('bqk,bkc->bqc', probs, v))
    return out.reshape(b, h, w, c) + x
