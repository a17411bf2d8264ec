"""A tiny stand-in codec with SELIC's call signature, a matching loss, and test configs for training tests.

Other test files (and their subprocesses, with tests/ on PYTHONPATH) import from here.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxsemic.training.config import base_config


class StandInCodec(nn.Module):
  """x [B,H,W,3] (+ text [B,D]) -> {'x_hat', 'likelihoods': {'y': [B,H/16,W/16,M], 'z': [B,H/64,W/64,N]}}."""

  N: int = 4
  M: int = 6
  fusion: str = "concat"

  @nn.compact
  def __call__(self, x, text=None, train=False):
    y = nn.Dense(self.M, name="g_a")(space_to_depth(x, 16))
    if self.fusion != "none" and text is not None:
      y = y + nn.Dense(self.M, name="fuse")(text)[:, None, None, :]
    z = nn.Dense(self.N, name="h_a")(space_to_depth(y, 4))
    if train:
      y_hat = y + jax.random.uniform(self.make_rng("noise"), y.shape, minval=-0.5, maxval=0.5)
      z_hat = z + jax.random.uniform(self.make_rng("noise"), z.shape, minval=-0.5, maxval=0.5)
    else:
      y_hat, z_hat = jnp.round(y), jnp.round(z)
    scale_y = jax.nn.softplus(self.param("scale_y", nn.initializers.ones, (self.M,))) + 0.1
    scale_z = jax.nn.softplus(self.param("scale_z", nn.initializers.ones, (self.N,))) + 0.1
    lik = lambda v, s: jnp.maximum(jax.nn.sigmoid((v + 0.5) / s) - jax.nn.sigmoid((v - 0.5) / s), 1e-9)
    x_hat = depth_to_space(nn.Dense(16 * 16 * 3, name="g_s")(y_hat), 16)
    return {"x_hat": x_hat, "likelihoods": {"y": lik(y_hat, scale_y), "z": lik(z_hat, scale_z)}}


def space_to_depth(x, k):
  """[B, H, W, C] -> [B, H/k, W/k, k*k*C] (non-overlapping k x k patches)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // k, k, w // k, k, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // k, w // k, k * k * c)


def depth_to_space(x, k):
  """Inverse of space_to_depth."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, k, k, c // (k * k)).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * k, w * k, c // (k * k))


def standin_loss(out, x, lmbda):
  """bpp + λ·255²·MSE with the contract's metric names."""
  num_pixels = x.shape[0] * x.shape[1] * x.shape[2]
  bpp = sum(jnp.sum(-jnp.log2(v)) for v in out["likelihoods"].values()) / num_pixels
  mse = jnp.mean((out["x_hat"] - x) ** 2)
  loss = bpp + lmbda * 255.0 ** 2 * mse
  return loss, {"loss": loss, "bpp": bpp, "mse": mse, "psnr": -10 * jnp.log10(mse)}


def write_images(folder: str, count: int = 6, size: tuple[int, int] = (80, 96), seed: int = 0) -> str:
  """Writes `count` smooth random PNGs (and one JPEG) into `folder`; returns it."""
  rng = np.random.default_rng(seed)
  os.makedirs(folder, exist_ok=True)
  for i in range(count):
    base = rng.uniform(0, 255, (size[0] // 8, size[1] // 8, 3)).astype(np.uint8)
    im = Image.fromarray(base).resize((size[1], size[0]), Image.BILINEAR)
    im.save(os.path.join(folder, f"img{i}.{'jpg' if i == 0 else 'png'}"))
  return folder


def tiny_train_config(data_dir: str, **overrides):
  """A config for seconds-long runs with the stand-in: 64px crops, batch 8, no workers."""
  c = base_config()
  c.model.N, c.model.M, c.model.fusion, c.model.text_dim, c.model.num_slices = 4, 6, "none", 8, 2
  c.data.train_dir = data_dir
  c.data.crop_size = 64
  c.data.worker_count = 0
  c.batch_size = 8
  c.num_train_steps = 6
  c.log_every = 2
  c.checkpoint_every = 2
  c.eval.real_bpp = False
  c.update(overrides)
  return c


def standin_for(config):
  """The stand-in model for a config (N, M, fusion from config.model)."""
  return StandInCodec(N=config.model.N, M=config.model.M, fusion=config.model.fusion)


def test_standin_follows_the_contract_shapes():
  model = StandInCodec(fusion="concat")
  x = jnp.zeros((2, 64, 128, 3))
  text = jnp.zeros((2, 8))
  variables = model.init({"params": jax.random.PRNGKey(0), "noise": jax.random.PRNGKey(1)},
                         x, text, train=True)
  out = model.apply(variables, x, text, train=True, rngs={"noise": jax.random.PRNGKey(2)})
  assert out["x_hat"].shape == x.shape
  assert out["likelihoods"]["y"].shape == (2, 4, 8, 6)
  assert out["likelihoods"]["z"].shape == (2, 1, 2, 4)
  loss, metrics = standin_loss(out, x, 0.01)
  assert np.isfinite(float(loss)) and set(metrics) >= {"loss", "bpp", "psnr"}
