"""Microbatches (gradient accumulation within a step): the split, the average, the auto rule, config errors."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsemic.errors import UserError
from jaxsemic.training import sharding, trainer
from jaxsemic.training.state import create_state
from jaxsemic.training.step import accumulated_grad, microbatch, resolve_microbatches, train_step
from test_train_standin import standin_loss, tiny_train_config


class NoiselessCodec(nn.Module):
  """Per-pixel codec without training noise: the batch-mean loss splits exactly over microbatches."""

  @nn.compact
  def __call__(self, x, text=None, train=False):
    y = nn.Dense(4, name="g_a")(x)
    if text is not None:
      y = y + nn.Dense(4, name="fuse")(text)[:, None, None, :]
    lik = jax.nn.sigmoid(y + 0.5) - jax.nn.sigmoid(y - 0.5) + 1e-6
    return {"x_hat": nn.Dense(3, name="g_s")(y), "likelihoods": {"y": lik}}


def _batch(b: int = 8):
  rng = np.random.default_rng(0)
  return (jnp.asarray(rng.uniform(0, 1, (b, 8, 8, 3)), jnp.float32),
          jnp.asarray(rng.normal(size=(b, 5)), jnp.float32))


def test_microbatch_takes_every_kth_item():
  x = jnp.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(microbatch(x, 1, 3), x[1::3])
  parts = [microbatch((x, None), i, 2) for i in range(2)]
  assert parts[0][1] is None
  np.testing.assert_array_equal(jnp.concatenate([p[0] for p in parts]), jnp.concatenate([x[0::2], x[1::2]]))


@pytest.mark.parametrize("parts", [2, 4])
def test_accumulated_gradient_equals_the_whole_batch(parts):
  x, text = _batch()
  model = NoiselessCodec()
  params = model.init(jax.random.PRNGKey(0), x, text)["params"]
  run = lambda k, xs: accumulated_grad(model, standin_loss, 0.01, "float32", params, xs, text,
                                       jax.random.PRNGKey(1), k)
  (loss1, metrics1), grads1 = run(1, x)
  (loss, metrics), grads = run(parts, x)
  np.testing.assert_allclose(loss, loss1, rtol=1e-5)
  np.testing.assert_allclose(metrics["mse"], metrics1["mse"], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads1)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  # The comparison can fail: a changed image in one part changes the accumulated gradient.
  (_, _), moved = run(parts, x.at[parts - 1].add(0.5))
  assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(moved),
                                                            jax.tree.leaves(grads))) > 1e-4


def test_train_step_with_microbatches_updates_like_one_batch():
  x, text = _batch()
  model, optimizer = NoiselessCodec(), optax.sgd(0.1)
  state = create_state(model.init(jax.random.PRNGKey(0), x, text)["params"], optimizer)
  batch = {"image": x, "text": text}
  new = [train_step(state, batch, jax.random.PRNGKey(2), model=model, optimizer=optimizer,
                    loss_fn=standin_loss, lmbda=0.01, microbatches=k)[0] for k in (1, 4)]
  for a, b in zip(jax.tree.leaves(new[0].params), jax.tree.leaves(new[1].params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_auto_rule_and_explicit_counts():
  assert resolve_microbatches(0, 8, 256, "cpu") == 4  # parts of 2 crops of 256²
  assert resolve_microbatches(0, 8, 64, "cpu") == 1
  assert resolve_microbatches(0, 3, 512, "cpu") == 3  # no divisor is small enough: one crop per part
  assert resolve_microbatches(0, 8, 256, "gpu") == 1
  assert resolve_microbatches(2, 8, 256, "tpu") == 2
  with pytest.raises(ValueError, match="does not divide"):
    resolve_microbatches(3, 8, 256, "cpu")
  with pytest.raises(ValueError, match=">= 0"):
    resolve_microbatches(-1, 8, 256, "cpu")


def test_config_error_is_one_line():
  config = tiny_train_config("unused", microbatches=3)
  mesh = sharding.make_mesh(jax.devices()[:1])
  with pytest.raises(UserError, match=r"^config.microbatches: microbatches 3 does not divide"):
    trainer.microbatches(config, mesh)
