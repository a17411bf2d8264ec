"""Rate-distortion objective: L = R + lambda * 255^2 * MSE (SELIC eq. 1, rates in bits per pixel)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def bits(likelihoods: Array) -> Array:
  """Total information content in bits."""
  return -jnp.sum(jnp.log2(likelihoods))


def rate_distortion_loss(out: dict, x: Array, lmbda: float) -> tuple[Array, dict]:
  """Loss and metrics (bpp, bpp_y, bpp_z, mse on [0,1] images, psnr) averaged over the batch."""
  b, h, w, _ = x.shape
  num_pixels = b * h * w
  bpp_y = bits(out["likelihoods"]["y"]) / num_pixels
  bpp_z = bits(out["likelihoods"]["z"]) / num_pixels
  bpp = bpp_y + bpp_z
  mse = jnp.mean(jnp.square(out["x_hat"].astype(jnp.float32) - x.astype(jnp.float32)))
  loss = bpp + lmbda * 255.0 ** 2 * mse
  psnr = -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))
  return loss, {"loss": loss, "bpp": bpp, "bpp_y": bpp_y, "bpp_z": bpp_z, "mse": mse, "psnr": psnr}
