"""The real SELIC (registry-built, text fusion on, not a stand-in) trains: its rate-distortion loss falls."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic import registry
from jaxsemic.codec.model_io import init_params
from jaxsemic.losses import rate_distortion_loss
from jaxsemic.training.config import base_config
from jaxsemic.training.state import create_state, make_optimizer
from jaxsemic.training.step import train_step


def test_tiny_selic_loss_falls():
  config = base_config()
  config.model.update(N=8, M=8, num_slices=2, charm_hidden=(8,), fusion="concat", text_dim=4)
  config.learning_rate, config.grad_clip = 3e-3, 1.0
  model = registry.build_model(config.model)
  optimizer = make_optimizer(config)
  state = create_state(init_params(registry.config_from_any(config.model), seed=0), optimizer)
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:64, 0:64] / 64.0
  images = np.stack([np.stack([np.sin(6 * xx + p), np.cos(5 * yy - p), xx * yy], -1) for p in (0.0, 1.0)])
  batch = {"image": jnp.asarray(np.uint8(127.5 + 127 * images)),
           "text": jnp.asarray(rng.normal(size=(2, 4)), jnp.float32)}
  step = jax.jit(functools.partial(train_step, model=model, optimizer=optimizer,
                                   loss_fn=rate_distortion_loss, lmbda=0.01))
  losses = []
  for _ in range(30):
    state, metrics = step(state, batch, jax.random.key(1))
    assert int(metrics["nonfinite"]) == 0
    losses.append(float(metrics["loss"]))
  assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses
