"""Attention layers of the SD UNet (spatial transformer) and the VAE mid block, NHWC.

Cross-attention probabilities are sown into the 'attention' collection under the layer's own path
(`...transformer_blocks_0/attn2/probs`), so a caller that asks for `mutable=['attention']` gets them as
ordinary differentiable outputs of the forward pass (SEDIC Sec. III-B, eq. 2 needs dE/dz through them).
Use `jaxsemic.diffusion.unet.cross_attention_maps` to select layers by their diffusers name.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.diffusion.resnet import conv1x1

Dtype = jnp.dtype
ATTENTION_COLLECTION = 'attention'
QUERY_CHUNK = 512  # query rows per step of CPU self-attention: [512, L] logits of one head stay in cache


def softmax32(logits: jax.Array) -> jax.Array:
  """Softmax over the last axis in at least float32 (bf16 logits are upcast, float64 kept)."""
  return jax.nn.softmax(logits.astype(jnp.promote_types(logits.dtype, jnp.float32)), axis=-1)


def heads_first(t: jax.Array) -> jax.Array:
  """[B, N, heads, d] -> [B, heads, N, d]."""
  return t.transpose(0, 2, 1, 3)


def attend(q: jax.Array, k: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Scaled dot-product attention on [B, N, heads, d] -> (out [B, N, heads, d], probs [B, heads, N, L])."""
  q, k, v = heads_first(q), heads_first(k), heads_first(v)
  probs = softmax32(jnp.einsum('bhqd,bhkd->bhqk', q, k) * (q.shape[-1] ** -0.5))
  return heads_first(jnp.einsum('bhqk,bhkd->bhqd', probs.astype(v.dtype), v)), probs


def attend_blocked(q: jax.Array, k: jax.Array, v: jax.Array, chunk: int = QUERY_CHUNK) -> jax.Array:
  """`attend(q, k, v)[0]` one (batch, head) at a time, queries in chunks of `chunk`, with a blocked backward.

  On XLA:CPU this is the fast form: a chunk's logits [chunk, L] (8 MiB at L = 4096) stay in cache from the
  QK^T matmul through the fused softmax to the PV matmul, where whole-head or all-head logits
  (64-512 MiB at 64x64 latents) go through memory several times; the backward (`blocked_heads`) keeps
  only the output and each row's log-sum-exp, so its memory is bounded by a chunk's logits too.
  """
  b, n, h, d = q.shape
  c = chunk if n > chunk and n % chunk == 0 else n
  flat = lambda t: heads_first(t).reshape(b * h, t.shape[1], d)
  out = blocked_heads(flat(q), flat(k), flat(v), c)
  return heads_first(out.reshape(b, h, n, d))


def _chunk_logits(qc: jax.Array, kh: jax.Array) -> jax.Array:
  """Scaled logits [c, L] of one query chunk in at least float32."""
  logits = (qc @ kh.T) * (qc.shape[-1] ** -0.5)
  return logits.astype(jnp.promote_types(logits.dtype, jnp.float32))


def _blocked_forward(q: jax.Array, k: jax.Array, v: jax.Array, chunk: int, with_lse: bool):
  """Per head [BH, N, d], per query chunk: outputs [BH, N, d] (and per-row log-sum-exp [BH, N] if asked)."""
  bh, n, d = q.shape

  def one_head(qkv):
    qh, kh, vh = qkv

    def rows(qc):
      logits = _chunk_logits(qc, kh)
      top = jax.lax.stop_gradient(logits.max(axis=-1, keepdims=True))
      e = jnp.exp(logits - top)
      total = e.sum(axis=-1, keepdims=True)
      out = (e / total).astype(vh.dtype) @ vh
      return (out, (top + jnp.log(total))[:, 0]) if with_lse else out

    return jax.lax.map(rows, qh.reshape(n // chunk, chunk, d))

  result = jax.lax.map(one_head, (q, k, v))
  if with_lse:
    return result[0].reshape(bh, n, d), result[1].reshape(bh, n)
  return result.reshape(bh, n, d)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def blocked_heads(q: jax.Array, k: jax.Array, v: jax.Array, chunk: int) -> jax.Array:
  """softmax(q k^T / sqrt(d)) v per head on [BH, N, d] x [BH, L, d], `chunk` queries at a time.

  The backward is written out as in FlashAttention (Dao et al. 2022, Alg. 2 with query blocks): per chunk
  P = exp(S - lse) from the saved log-sum-exp, dV += P^T dO, dS = P * (dO V^T - rowsum(dO * O)),
  dQ = dS K / sqrt(d), dK += dS^T Q / sqrt(d); no softmax max/sum recomputed, no [N, L] tensor kept.
  """
  return _blocked_forward(q, k, v, chunk, False)


def _blocked_heads_fwd(q, k, v, chunk):
  out, lse = _blocked_forward(q, k, v, chunk, True)
  return out, (q, k, v, out, lse)


def _blocked_heads_bwd(chunk, residuals, dout):
  q, k, v, out, lse = residuals
  bh, n, d = q.shape
  scale = d ** -0.5
  split = lambda t: t.reshape((n // chunk, chunk) + t.shape[1:])

  def one_head(args):
    qh, kh, vh, oh, lh, doh = args
    delta = (doh.astype(jnp.float32) * oh.astype(jnp.float32)).sum(-1)  # rowsum(dO * O) [n]

    def rows(carry, xs):
      dk, dv = carry
      qc, lc, dc, doc = xs
      p = jnp.exp(_chunk_logits(qc, kh) - lc[:, None])  # [c, L] float32
      dv = dv + (p.astype(vh.dtype).T @ doc).astype(dv.dtype)
      ds = p * ((doc @ vh.T).astype(p.dtype) - dc[:, None])
      ds = (ds * scale).astype(qh.dtype)
      dk = dk + (ds.T @ qc).astype(dk.dtype)
      return (dk, dv), ds @ kh

    zeros = (jnp.zeros(kh.shape, jnp.float32), jnp.zeros(vh.shape, jnp.float32))
    (dk, dv), dq = jax.lax.scan(rows, zeros, (split(qh), split(lh), split(delta), split(doh)))
    return dq.reshape(n, d), dk.astype(kh.dtype), dv.astype(vh.dtype)

  return jax.lax.map(one_head, (q, k, v, out, lse, dout))


blocked_heads.defvjp(_blocked_heads_fwd, _blocked_heads_bwd)


def attend_fast(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """Attention output without the probabilities: `attend_blocked` on CPU, elsewhere
  `jax.nn.dot_product_attention` (cuDNN / XLA's fused kernels), recomputed in the backward pass."""
  if q.dtype == jnp.float64:  # dot_product_attention computes its softmax in float32
    return jax.checkpoint(lambda q, k, v: attend(q, k, v)[0])(q, k, v)
  other = jax.checkpoint(lambda q, k, v: jax.nn.dot_product_attention(q, k, v).astype(v.dtype))
  return jax.lax.platform_dependent(q, k, v, cpu=attend_blocked, default=other)


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
      out = attend_fast(split(q), split(k), split(v))
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
                            else conv1x1(n, self.dtype, name))
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
    q, k, v = (nn.Dense(c, dtype=self.dtype, name=name)(hidden)[:, :, None, :] for name in ('to_q', 'to_k', 'to_v'))
    out = nn.Dense(c, dtype=self.dtype, name='to_out_0')(attend_fast(q, k, v)[:, :, 0, :])
    return out.reshape(b, h, w, c) + x
