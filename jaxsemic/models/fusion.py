"""Text-image latent fusion (SELIC Sec. III-A, Fig. 2; ablation variants of Table II)."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.layers import ResidualBlock

Array = jax.Array


class TextFusion(nn.Module):
  """Maps a text vector y2 [B, D] to M channels, broadcasts it over y3's grid and fuses it with y3.

  concat: [y3, y2] (2M channels) -> residual block -> M (the paper's module); add / mul: y3 + y2 or y3 * y2,
  then the same residual block, so the variants differ only in how the two meet.
  """

  M: int
  mode: str = "concat"

  @nn.compact
  def __call__(self, y3: Array, text: Array) -> Array:
    chex.assert_rank(y3, 4)
    chex.assert_rank(text, 2)
    chex.assert_equal(y3.shape[0], text.shape[0])
    t = nn.relu(nn.Dense(self.M, name="fc0")(text.astype(y3.dtype)))
    t = nn.Dense(self.M, name="fc1")(t)
    t = jnp.broadcast_to(t[:, None, None, :], y3.shape)
    if self.mode == "concat":
      fused = jnp.concatenate([y3, t], axis=-1)
    elif self.mode == "add":
      fused = y3 + t
    elif self.mode == "mul":
      fused = y3 * t
    else:
      raise ValueError(f"unknown fusion mode {self.mode!r}")
    return ResidualBlock(self.M, name="res")(fused)
