"""Layers against their PyTorch definitions (transposed conv, pixel shuffle, GDN)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxsemic.layers import GDN, TransposedConv, depth_to_space


@pytest.mark.parametrize("k", [3, 5])
def test_polyphase_transposed_conv_matches_torch(k):
  x = np.random.default_rng(k).normal(size=(2, 5, 7, 4)).astype(np.float32)
  mod = TransposedConv(6, k, 2)
  v = mod.init(jax.random.PRNGKey(0), x)
  ours = np.asarray(mod.apply(v, x))
  ref = torch.nn.ConvTranspose2d(4, 6, k, 2, padding=k // 2, output_padding=1)
  ref.weight.data = torch.tensor(np.asarray(v["params"]["kernel"]).transpose(2, 3, 0, 1))
  ref.bias.data = torch.tensor(np.asarray(v["params"]["bias"]))
  want = ref(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
  assert ours.shape == (2, 10, 14, 6)
  np.testing.assert_allclose(ours, want, atol=1e-5)
  # The weight gradient flows through the polyphase gather.
  g = jax.grad(lambda p: jnp.sum(mod.apply(p, x) ** 2))(v)
  assert np.all(np.isfinite(g["params"]["kernel"])) and np.abs(g["params"]["kernel"]).sum() > 0


def test_depth_to_space_is_pixel_shuffle():
  x = np.arange(2 * 3 * 4 * 8, dtype=np.float32).reshape(2, 3, 4, 8)
  want = torch.nn.functional.pixel_shuffle(torch.tensor(x).permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1).numpy()
  np.testing.assert_array_equal(np.asarray(depth_to_space(jnp.asarray(x), 2)), want)


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_formula(inverse):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(1, 3, 3, 5)).astype(np.float32)
  mod = GDN(inverse=inverse)
  v = mod.init(jax.random.PRNGKey(0), x)
  v = jax.tree.map(lambda a: a + 0.05 * rng.random(a.shape).astype(np.float32), v)
  beta = np.asarray(v["params"]["beta"], np.float64) ** 2 - 2.0 ** -36
  gamma = np.asarray(v["params"]["gamma"], np.float64) ** 2 - 2.0 ** -36
  norm = np.sqrt(beta + (x.astype(np.float64) ** 2) @ gamma.T)
  want = x * norm if inverse else x / norm
  np.testing.assert_allclose(np.asarray(mod.apply(v, x)), want, rtol=1e-5, atol=1e-6)
