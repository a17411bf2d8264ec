"""Residual and attention blocks of Cheng et al. 2020 (also SELIC's g_a/g_s, Fig. 1 of the SELIC paper)."""

from __future__ import annotations

import flax.linen as nn
import jax

from jaxsemic.layers.conv import Conv, SubpelConv, TransposedConv
from jaxsemic.layers.gdn import GDN

Array = jax.Array


def _lrelu(x: Array) -> Array:
  return nn.leaky_relu(x, 0.01)  # PyTorch's default slope, so imported weights behave identically.


class ResidualBlock(nn.Module):
  """conv3x3 - LeakyReLU - conv3x3 - LeakyReLU, plus an identity (or 1x1 conv) shortcut."""

  features: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    identity = x if x.shape[-1] == self.features else Conv(self.features, 1, name="skip")(x)
    out = _lrelu(Conv(self.features, 3, name="conv1")(x))
    out = _lrelu(Conv(self.features, 3, name="conv2")(out))
    return out + identity


class ResidualBlockWithStride(nn.Module):
  """Downsampling block: strided conv3x3 - LeakyReLU - conv3x3 - GDN, plus a strided 1x1 shortcut."""

  features: int
  stride: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    out = _lrelu(Conv(self.features, 3, self.stride, name="conv1")(x))
    out = GDN(name="gdn")(Conv(self.features, 3, name="conv2")(out))
    needs_skip = self.stride != 1 or x.shape[-1] != self.features
    identity = Conv(self.features, 1, self.stride, name="skip")(x) if needs_skip else x
    return out + identity


class ResidualBlockUpsample(nn.Module):
  """Upsampling block: up - LeakyReLU - conv3x3 - IGDN, plus an upsampling shortcut.

  `mode="subpel"` is Cheng et al.'s sub-pixel conv; `mode="tconv"` is the transposed conv of SELIC's Fig. 1
  (computed in polyphase form, see `layers.conv`).
  """

  features: int
  upsample: int = 2
  mode: str = "subpel"

  def _up(self, name: str) -> nn.Module:
    if self.mode == "subpel":
      return SubpelConv(self.features, 3, self.upsample, name=name)
    if self.mode == "tconv":
      return TransposedConv(self.features, 3, self.upsample, name=name)
    raise ValueError(f"unknown upsampling mode {self.mode!r}")

  @nn.compact
  def __call__(self, x: Array) -> Array:
    out = _lrelu(self._up("subpel_conv")(x))
    out = GDN(inverse=True, name="igdn")(Conv(self.features, 3, name="conv")(out))
    return out + self._up("upsample")(x)


class _ResidualUnit(nn.Module):
  """1x1 (N->N/2) - ReLU - 3x3 - ReLU - 1x1 (N/2->N), identity, ReLU."""

  features: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    h = self.features // 2
    out = nn.relu(Conv(h, 1, name="conv1")(x))
    out = nn.relu(Conv(h, 3, name="conv2")(out))
    return nn.relu(Conv(self.features, 1, name="conv3")(out) + x)


class AttentionBlock(nn.Module):
  """Simplified attention of Cheng et al. 2020: x + a(x) * sigmoid(b(x))."""

  features: int

  @nn.compact
  def __call__(self, x: Array) -> Array:
    a = x
    for i in range(3):
      a = _ResidualUnit(self.features, name=f"conv_a_{i}")(a)
    b = x
    for i in range(3):
      b = _ResidualUnit(self.features, name=f"conv_b_{i}")(b)
    b = Conv(self.features, 1, name="conv_b_out")(b)
    return x + a * nn.sigmoid(b)
