"""The codec contract: what a model family gives the generic code (the values of `jaxsemic.registry`).

A family is one paper's architecture, keyed by its paper id (CompressAI's zoo names). It owns its config class,
its Flax module, its integer coding tables and its stream layout; the generic code (`codec.api`,
`codec.model_io`, the commands, evaluation and training) reaches it only through these fields. The generic code
pads the image, packs the sub-streams into the `.jsc` container and crops the decoded image; the family turns
padded pixels into sub-streams and back.

`model` below is a `codec.model_io.CodecModel`: `cfg`, `module`, `params`, `tables`, `scale_table`, `z_coder`,
`y_coder`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic import runtime

# Everything that feeds the range coder is computed in float32 at this matmul/conv precision (docs/bitstream.md).
CODER_PRECISION = "highest"


@dataclasses.dataclass(frozen=True)
class Family:
  """One registered architecture; every field is a pure function of its arguments."""

  name: str  # paper id, also the `name` key of its configs
  config_from_any: Callable[[Any], Any]  # ConfigDict / dict (config.json) / config -> frozen, hashable config
  build: Callable[[Any], Any]  # config -> Flax module with __call__(x, text, train) -> {x_hat, y_hat, likelihoods}
  make_coding_tables: Callable[[Mapping[str, Any]], dict[str, np.ndarray]]  # params -> integer tables (export)
  # (model, padded float images [B,Hp,Wp,3] in [0,1], text [B,D] or None, sharding or None)
  #   -> (sub-streams of each image, estimated bits of each image)
  compress: Callable[[Any, np.ndarray, np.ndarray | None, Any], tuple[list[tuple[bytes, ...]], list[float]]]
  # (model, sub-streams, padded height, padded width) -> (x_hat [1,Hp,Wp,3] in [0,1], y_hat [1,h,w,M])
  decompress: Callable[[Any, Sequence[bytes], int, int], tuple[jax.Array, jax.Array]]
  num_streams: int  # sub-streams of its .jsc files
  text_dim: Callable[[Any], int] = lambda cfg: 0  # size of the text vector the encoder reads (0: no text)
  pad: int = 64  # images are edge-padded to multiples of this (the total downsampling)
  # Decoders, same signature as `decompress`, of older .jsc format versions whose payload this family laid out
  # differently (docs/bitstream.md): ((version, decompress), ...).
  older_decompress: tuple[tuple[int, Callable[[Any, Sequence[bytes], int, int], tuple[jax.Array, jax.Array]]],
                          ...] = ()

  def decompress_for(self, version: int):
    """The decoder of this family's sub-streams in a .jsc file of format `version`."""
    return dict(self.older_decompress).get(version, self.decompress)


def coder_precision():
  """Context pinning float32 matmuls/convs at full precision, around every jitted call feeding the coder."""
  return jax.default_matmul_precision(CODER_PRECISION)


def variables(params: Mapping[str, Any]) -> dict:
  return {"params": params}


@functools.partial(runtime.persistent_jit, static_argnums=0)
def synthesis(module, params, y_hat: jax.Array) -> jax.Array:
  """x_hat = g_s(y_hat) clipped to [0, 1] (every family's module has `synthesis`)."""
  return jnp.clip(module.apply(variables(params), y_hat, method="synthesis"), 0.0, 1.0)


def channel_index(shape: tuple[int, ...]) -> np.ndarray:
  """Table index = channel, for latents coded with one table per channel (factorized priors)."""
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)
