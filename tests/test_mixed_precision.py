"""config.compute_dtype="bfloat16": the transforms train in bfloat16, everything stored and coded stays float32."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsemic import registry
from jaxsemic.codec import api
from jaxsemic.codec.model_io import CodecModel, init_params
from jaxsemic.layers import precision
from jaxsemic.losses import rate_distortion_loss
from jaxsemic.training.config import base_config
from jaxsemic.training.state import create_state, make_optimizer
from jaxsemic.training.step import train_step
from jaxsemic.zoo.config import zoo_model_config


def _bf16_outputs(jaxpr) -> set[str]:
  """Names of the primitives with a bfloat16 output anywhere in a closed jaxpr (sub-jaxprs included)."""
  found = set()
  for eqn in jaxpr.eqns:
    if any(getattr(v.aval, "dtype", None) == jnp.bfloat16 for v in eqn.outvars):
      found.add(eqn.primitive.name)
    for p in eqn.params.values():
      inner = getattr(p, "jaxpr", None)
      if inner is not None:
        found |= _bf16_outputs(getattr(inner, "jaxpr", inner))
  return found


def _tiny_config(compute_dtype: str):
  config = base_config()
  config.model = zoo_model_config("bmshj2018-hyperprior", 8, 12)
  config.compute_dtype, config.learning_rate = compute_dtype, 1e-3
  return config


@pytest.fixture(scope="module")
def trained():
  """Two bfloat16 steps of a tiny bmshj2018-hyperprior: (config, state, losses, primitives with a bfloat16 output)."""
  config = _tiny_config("bfloat16")
  model = registry.build_model(config.model)
  optimizer = make_optimizer(config)
  state = create_state(init_params(registry.config_from_any(config.model), seed=0), optimizer)
  yy, xx = np.mgrid[0:64, 0:64] / 64.0
  image = np.stack([np.sin(6 * xx), np.cos(5 * yy), xx * yy], -1)
  batch = {"image": jnp.asarray(np.uint8(127.5 + 127 * np.stack([image, image[::-1]])))}
  step = functools.partial(train_step, model=model, optimizer=optimizer, loss_fn=rate_distortion_loss,
                           lmbda=0.01, compute_dtype=config.compute_dtype)
  traced = jax.jit(step).trace(state, batch, jax.random.key(1))  # traced once: jaxpr and compiled step
  bf16_prims = _bf16_outputs(traced.jaxpr.jaxpr)
  step = traced.lower().compile()
  losses = []
  for _ in range(2):
    state, metrics = step(state, batch, jax.random.key(1))
    losses.append(float(metrics["loss"]))
  return config, state, losses, bf16_prims


def test_bfloat16_step_trains_with_float32_params_and_entropy_math(trained):
  _, state, losses, bf16_prims = trained
  assert np.all(np.isfinite(losses)), losses
  assert "conv_general_dilated" in bf16_prims  # the transforms did run in bfloat16 ...
  assert not bf16_prims & {"log", "erfc", "erf", "logistic", "tanh", "exp", "log1p"}  # ... the likelihoods not
  leaves = jax.tree.leaves(state.params) + jax.tree.leaves(state.opt_state)
  assert {str(x.dtype) for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)} == {"float32"}


def test_model_trained_in_bfloat16_codes_in_float32_as_a_float32_model(trained):
  config, state, _, _ = trained
  params = jax.tree.map(np.asarray, state.params)
  model = CodecModel.from_params(params, config.model)
  same = CodecModel.from_params(params, _tiny_config("float32").model)
  assert model.model_id == same.model_id  # the option is not part of the model
  forward = jax.make_jaxpr(lambda p, x: model.module.apply({"params": p}, x))(params, np.zeros((1, 64, 64, 3)))
  assert not _bf16_outputs(forward.jaxpr)
  image = np.uint8(np.random.default_rng(0).integers(0, 256, (64, 80, 3)))
  data, _ = api.compress(model, image)
  assert api.compress(same, image)[0] == data
  np.testing.assert_array_equal(api.decompress(model, data), api.decompress(same, data))


def test_unknown_compute_dtype_is_refused():
  with pytest.raises(ValueError, match="bfloat16"):
    with precision.layers_in("float16"):
      pass
