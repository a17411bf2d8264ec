"""Cheng, Sun, Takeuchi, Katto 2020, "Learned image compression with discretized Gaussian mixture likelihoods
and attention modules" — as in CompressAI: `cheng2020-anchor` (residual blocks, sub-pixel upsampling, Sec. 3.3,
Fig. 2 without attention) and `cheng2020-attn` (plus the simplified attention module, Fig. 3). Both use
mbt2018's context model and a single Gaussian (CompressAI's variant, not the paper's mixture), M = N.

Each transform is a list of layer specs whose positions are CompressAI's `nn.Sequential` indices, so layer i
here is `g_a.{i}` there (activations keep their index but hold no weights).
"""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsemic.layers import (AttentionBlock, Conv, ResidualBlock, ResidualBlockUpsample, ResidualBlockWithStride,
                             SubpelConv)
from jaxsemic.zoo.mbt2018 import JointAutoregressive

Array = jax.Array


def anchor_specs(N: int) -> dict[str, tuple]:
  """Layer specs (kind, features, stride/upscale) of cheng2020-anchor's four transforms."""
  n2 = N * 3 // 2
  return {
      "g_a": (("rbws", N, 2), ("rb", N), ("rbws", N, 2), ("rb", N), ("rbws", N, 2), ("rb", N), ("conv3", N, 2)),
      "h_a": (("conv3", N, 1), ("lrelu",), ("conv3", N, 1), ("lrelu",), ("conv3", N, 2), ("lrelu",),
              ("conv3", N, 1), ("lrelu",), ("conv3", N, 2)),
      "h_s": (("conv3", N, 1), ("lrelu",), ("subpel", N, 2), ("lrelu",), ("conv3", n2, 1), ("lrelu",),
              ("subpel", n2, 2), ("lrelu",), ("conv3", 2 * N, 1)),
      "g_s": (("rb", N), ("rbu", N, 2), ("rb", N), ("rbu", N, 2), ("rb", N), ("rbu", N, 2), ("rb", N),
              ("subpel", 3, 2)),
  }


def attention_specs(N: int) -> dict[str, tuple]:
  """cheng2020-attn: the anchor with attention blocks inserted in g_a and g_s."""
  s = anchor_specs(N)
  s["g_a"] = (("rbws", N, 2), ("rb", N), ("rbws", N, 2), ("attn", N), ("rb", N), ("rbws", N, 2), ("rb", N),
              ("conv3", N, 2), ("attn", N))
  s["g_s"] = (("attn", N), ("rb", N), ("rbu", N, 2), ("rb", N), ("rbu", N, 2), ("attn", N), ("rb", N),
              ("rbu", N, 2), ("rb", N), ("subpel", 3, 2))
  return s


def make_layer(spec: tuple, name: str):
  """One layer from its spec; activations are plain functions."""
  kind = spec[0]
  if kind == "lrelu":
    return lambda x: nn.leaky_relu(x, 0.01)
  if kind == "conv3":
    return Conv(spec[1], 3, spec[2], name=name)
  if kind == "subpel":
    return SubpelConv(spec[1], 3, spec[2], name=name)
  if kind == "rb":
    return ResidualBlock(spec[1], name=name)
  if kind == "rbws":
    return ResidualBlockWithStride(spec[1], spec[2], name=name)
  if kind == "rbu":
    return ResidualBlockUpsample(spec[1], spec[2], "subpel", name=name)
  if kind == "attn":
    return AttentionBlock(spec[1], name=name)
  raise ValueError(f"unknown layer kind {kind!r}")


class Sequence(nn.Module):
  """Layers applied in order; layer i is named `layer{i}` (CompressAI's index i)."""

  specs: tuple

  @nn.compact
  def __call__(self, x: Array) -> Array:
    for i, spec in enumerate(self.specs):
      x = make_layer(spec, f"layer{i}")(x)
    return x


class Cheng2020Anchor(JointAutoregressive):
  """cheng2020-anchor: mbt2018's entropy model around residual-block transforms."""

  def specs(self) -> dict[str, tuple]:
    return anchor_specs(self.cfg.N)

  def make_transforms(self):
    s = self.specs()
    return Sequence(s["g_a"]), Sequence(s["g_s"]), Sequence(s["h_a"]), Sequence(s["h_s"])


class Cheng2020Attention(Cheng2020Anchor):
  """cheng2020-attn: the anchor plus attention modules."""

  def specs(self) -> dict[str, tuple]:
    return attention_specs(self.cfg.N)
