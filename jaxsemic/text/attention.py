"""Multi-head scaled dot-product attention shared by the BERT, CLIP and BLIP ports."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None,
                          num_heads: int) -> jax.Array:
  """softmax(q k^T / sqrt(d)) v over `num_heads` heads; q [B,Q,C], k/v [B,K,C], mask [B,Q,K] True = attend."""
  width = q.shape[-1] // num_heads
  split = lambda t: t.reshape(*t.shape[:-1], num_heads, width)
  scores = jnp.einsum("bqhd,bkhd->bhqk", split(q), split(k)) / jnp.sqrt(jnp.float32(width))
  if mask is not None:
    scores = jnp.where(mask[:, None], scores, jnp.finfo(scores.dtype).min)
  out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), split(v))
  return out.reshape(*q.shape[:-1], num_heads * width)


def padding_mask(keep: jax.Array, num_queries: int, causal: bool = False) -> jax.Array:
  """[B,K] keep flags -> [B,Q,K] attention mask, lower-triangular too when `causal`."""
  mask = jnp.broadcast_to(keep.astype(bool)[:, None, :], (keep.shape[0], num_queries, keep.shape[1]))
  if causal:
    mask = mask & jnp.tril(jnp.ones((num_queries, keep.shape[1]), bool))[None]
  return mask
