"""Evaluation on a held-out folder: estimated bpp from the likelihoods, and real bpp through the codec."""

from __future__ import annotations

import functools
import logging
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsemic.data import files
from jaxsemic.training import sharding

PAD_MULTIPLE = 64  # Total down-sampling of the hyperprior path (contract: H, W multiples of 64).


def psnr(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR in dB between two uint8 images."""
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
  return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def pad_to_multiple(image: np.ndarray, multiple: int = PAD_MULTIPLE) -> np.ndarray:
  """Edge-pads the bottom/right of [H, W, 3] to multiples of `multiple`."""
  h, w = image.shape[:2]
  return np.pad(image, ((0, -h % multiple), (0, -w % multiple), (0, 0)), mode="edge")


@functools.partial(jax.jit, static_argnums=0)
def _forward(model: nn.Module, params: Any, x: jax.Array, text: jax.Array | None) -> dict:
  """Hard-rounded forward pass (train=False), as the codec would decode."""
  return model.apply({"params": params}, x, text, train=False)


def estimate(model: nn.Module, params: Any, image: np.ndarray,
             text: np.ndarray | None) -> tuple[float, float]:
  """(bpp from the model's likelihoods, PSNR of its reconstruction) for one uint8 image."""
  h, w = image.shape[:2]
  x = jnp.asarray(pad_to_multiple(image)[None], jnp.float32) / 255.0
  t = None if text is None else jnp.asarray(text[None], jnp.float32)
  out = _forward(model, params, x, t)
  bits = sum(float(-jnp.sum(jnp.log2(v))) for v in out["likelihoods"].values())
  x_hat = np.asarray(jnp.clip(out["x_hat"][0, :h, :w], 0, 1) * 255 + 0.5).astype(np.uint8)
  return bits / (h * w), psnr(image, x_hat)


def real_codec(params: Any, model_config: ml_collections.ConfigDict):
  """An in-memory codec model (coding tables built now), or None if jaxsemic.codec is unavailable."""
  try:
    from jaxsemic.codec.model_io import CodecModel  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return CodecModel.from_params(params, model_config)


def evaluate_folder(model: nn.Module, params: Any, config: ml_collections.ConfigDict,
                    text_for: Any = None) -> dict[str, float]:
  """Mean est_bpp / est_psnr (and bpp / psnr through compress+decompress if the codec exists).

  `text_for(path) -> [D] vector or None` supplies a caption vector per image.
  """
  paths = files.list_images(config.eval.dir)[: config.eval.max_images or None]
  params = sharding.to_host(params)
  codec = real_codec(params, config.model) if config.eval.real_bpp else None
  if config.eval.real_bpp and codec is None:
    logging.warning("jaxsemic.codec is not available yet: evaluating estimated bpp only")
  rows = []
  for path in paths:
    image = files.read_rgb(path)
    text = text_for(path) if text_for else None
    row = dict(zip(("est_bpp", "est_psnr"), estimate(model, params, image, text)))
    if codec is not None:
      from jaxsemic.codec import api  # pylint: disable=import-outside-toplevel
      data, info = api.compress(codec, image, text=text)
      row["bpp"] = float(info["bpp"])
      row["psnr"] = psnr(image, api.decompress(codec, data))
    rows.append(row)
  return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
