"""Mixed precision: the layers of `jaxsemic.layers` compute in bfloat16, everything else in float32.

The policy of tensorflow-compression and codex: the analysis/synthesis transforms run in a low-precision compute
dtype while parameters, optimizer state, the entropy models, likelihoods and the loss stay float32 (rates are
sums of -log2 p over many latents, and bfloat16's 8-bit mantissa cannot hold p near 1 or the sum). Within
`layers_in(dtype)`, a call of a layer module (conv, transposed conv, GDN, residual and attention blocks) gets
its floating inputs cast to `dtype`, computes in it (the layers cast their float32 parameters to their input's
dtype) and returns float32; a layer inside another runs in the outer one's dtype without casts. Nothing else
is touched, so code that reaches the entropy models with a transform's output sees float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.layers.conv import Conv, SubpelConv, TransposedConv
from jaxsemic.layers.gdn import GDN
from jaxsemic.layers.residual import AttentionBlock, ResidualBlock, ResidualBlockUpsample, ResidualBlockWithStride

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
LAYERS = (Conv, TransposedConv, SubpelConv, GDN, ResidualBlock, ResidualBlockWithStride, ResidualBlockUpsample,
          AttentionBlock)


def compute_dtype(name: str) -> Any:
  """The jnp dtype of a compute-dtype name (`float32` or `bfloat16`); ValueError otherwise."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"compute dtype must be one of {', '.join(COMPUTE_DTYPES)}, not {name!r}")
  return COMPUTE_DTYPES[name]


def _cast(tree: Any, dtype: Any) -> Any:
  """Floating arrays of `tree` cast to `dtype`; everything else unchanged."""
  return jax.tree.map(lambda v: v.astype(dtype) if isinstance(v, jax.Array) and jnp.issubdtype(
      v.dtype, jnp.floating) else v, tree)


@contextlib.contextmanager
def layers_in(name: str) -> Iterator[None]:
  """Within: calls of `LAYERS` modules compute in the named dtype with float32 inputs and outputs at the edge."""
  dtype = compute_dtype(name)
  if dtype == jnp.float32:
    yield
    return
  depth = [0]  # layer calls currently open (tracing is sequential)

  def interceptor(next_fun, args, kwargs, context):
    if depth[0] or context.method_name != "__call__" or not isinstance(context.module, LAYERS):
      return next_fun(*args, **kwargs)
    depth[0] += 1
    try:
      out = next_fun(*_cast(args, dtype), **_cast(kwargs, dtype))
    finally:
      depth[0] -= 1
    return _cast(out, jnp.float32)

  with nn.intercept_methods(interceptor):
    yield
