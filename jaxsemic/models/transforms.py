"""SELIC's main and hyper transforms (Fig. 1 of the SELIC paper; layer order after Cheng et al. 2020)."""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsemic.layers import (Conv, ResidualBlock, ResidualBlockUpsample, ResidualBlockWithStride, SubpelConv,
                             TransposedConv)

Array = jax.Array


def _lrelu(x: Array) -> Array:
  return nn.leaky_relu(x, 0.01)


class AnalysisTransform(nn.Module):
  """g_a3: three residual blocks with strided shortcuts + a strided conv: x [B,H,W,3] -> y3 [B,H/16,W/16,M]."""

  N: int
  M: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    for i in range(3):
      x = ResidualBlockWithStride(self.N, 2, name=f"down{i}")(x)
      x = ResidualBlock(self.N, name=f"res{i}")(x)
    return Conv(self.M, 3, 2, name="out")(x)


class SynthesisTransform(nn.Module):
  """g_s: the mirror of g_a with upsampling residual blocks: y_hat -> x_hat [B,H,W,3]."""

  N: int
  upsample: str = "tconv"

  @nn.compact
  def __call__(self, y: Array) -> Array:
    x = y
    for i in range(3):
      x = ResidualBlock(self.N, name=f"res{i}")(x)
      x = ResidualBlockUpsample(self.N, 2, self.upsample, name=f"up{i}")(x)
    x = ResidualBlock(self.N, name="res3")(x)
    if self.upsample == "tconv":
      return TransposedConv(3, 3, 2, name="out")(x)
    return SubpelConv(3, 3, 2, name="out")(x)


class HyperAnalysis(nn.Module):
  """h_a: y [.., M] -> z [.., N] at 1/4 of y's resolution."""

  N: int

  @nn.compact
  def __call__(self, y: Array) -> Array:
    z = _lrelu(Conv(self.N, 3, name="conv0")(y))
    z = _lrelu(Conv(self.N, 5, 2, name="conv1")(z))
    return Conv(self.N, 5, 2, name="conv2")(z)


class HyperSynthesis(nn.Module):
  """One branch of h_s (means or scales): z_hat -> [.., M] at y's resolution."""

  N: int
  M: int

  @nn.compact
  def __call__(self, z: Array) -> Array:
    h = _lrelu(TransposedConv(self.N, 5, 2, name="tconv0")(z))
    h = _lrelu(TransposedConv(self.N * 3 // 2, 5, 2, name="tconv1")(h))
    return Conv(self.M, 3, name="conv2")(h)
