"""Layers against their PyTorch definitions (transposed conv, pixel shuffle, GDN)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxsemic.layers import GDN, TransposedConv, conv2d, depth_to_space


@pytest.mark.parametrize("k,cout", [(3, 6), (5, 6), (3, 16), (5, 16)])  # window form below 16, phases above
def test_polyphase_transposed_conv_matches_torch(k, cout):
  x = np.random.default_rng(k).normal(size=(2, 5, 7, 4)).astype(np.float32)
  mod = TransposedConv(cout, k, 2)
  v = mod.init(jax.random.PRNGKey(0), x)
  ours = np.asarray(mod.apply(v, x))
  ref = torch.nn.ConvTranspose2d(4, cout, k, 2, padding=k // 2, output_padding=1)
  ref.weight.data = torch.tensor(np.asarray(v["params"]["kernel"]).transpose(2, 3, 0, 1))
  ref.bias.data = torch.tensor(np.asarray(v["params"]["bias"]))
  want = ref(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
  assert ours.shape == (2, 10, 14, cout)
  np.testing.assert_allclose(ours, want, atol=1e-5)
  # The weight gradient (through the phase gather and the tap-matmul VJP) equals PyTorch's.
  g = jax.grad(lambda p: jnp.sum(mod.apply(p, x) ** 2))(v)
  xt = torch.tensor(x).permute(0, 3, 1, 2)
  (ref(xt) ** 2).sum().backward()
  np.testing.assert_allclose(g["params"]["kernel"], ref.weight.grad.numpy().transpose(2, 3, 0, 1),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [3, 5])
def test_transposed_conv_weight_gradient_as_strided_conv(monkeypatch, k):
  x = jax.random.normal(jax.random.PRNGKey(k), (2, 5, 7, 8))
  mod = TransposedConv(16, k, 2)
  v = mod.init(jax.random.PRNGKey(1), x)
  g = jax.random.normal(jax.random.PRNGKey(2), (2, 10, 14, 16))
  grads = lambda: jax.grad(lambda v, x: jnp.sum(mod.apply(v, x) * g), argnums=(0, 1))(v, x)
  monkeypatch.setenv("JAXSEMIC_CONV_WGRAD", "xla")  # the phase convs' own gradients
  want = grads()
  monkeypatch.setenv("JAXSEMIC_CONV_WGRAD", "auto")  # CPU: the adjoint strided conv's weight gradient
  ours = grads()
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), ours, want)
  jaxpr = str(jax.make_jaxpr(lambda v: jax.grad(lambda v: jnp.sum(mod.apply(v, x) * g))(v))(v))
  assert "window_strides=(2, 2)" in jaxpr  # the weight gradient went through the strided conv
  # The comparison can fail: the kernel gradient with its taps mirrored differs.
  assert not np.allclose(jnp.flip(ours[0]["params"]["kernel"], (0, 1)), want[0]["params"]["kernel"], atol=1e-3)


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


@pytest.mark.parametrize("k,stride,cin,pad", [(3, 1, 24, None), (5, 2, 20, None), (5, 2, 3, None),
                                              (1, 1, 17, None), (3, 1, 18, ((1, 0), (2, 1))),
                                              (1, 2, 16, None), (3, 2, 16, None), (5, 2, 16, ((1, 2), (2, 0)))])
@pytest.mark.parametrize("mode", ["taps", "auto"])  # auto on CPU: phase-conv input gradient, XLA's weight gradient
def test_conv2d_custom_gradients_match_xla(monkeypatch, k, stride, cin, pad, mode):
  monkeypatch.setenv("JAXSEMIC_CONV_WGRAD", mode)
  kx, kw, kg = jax.random.split(jax.random.PRNGKey(k * 10 + stride), 3)
  x = jax.random.normal(kx, (2, 11, 9, cin))
  w = jax.random.normal(kw, (k, k, cin, 32))  # >= 32 outputs: the tap weight gradient
  padding = pad or ((k // 2, k // 2),) * 2
  ref_fn = lambda x, w: jax.lax.conv_general_dilated(x, w, (stride,) * 2, padding,
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
  y_ref, vjp_ref = jax.vjp(ref_fn, x, w)
  y, vjp = jax.vjp(lambda x, w: conv2d(x, w, stride, padding), x, w)
  g = jax.random.normal(kg, y.shape)
  np.testing.assert_allclose(y, y_ref, atol=1e-5)
  for ours, ref in zip(vjp(g), vjp_ref(g)):
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * float(jnp.abs(ref).max()))
  # The test can fail: a gradient from the wrong tap order differs.
  wrong = jnp.flip(vjp(g)[1], axis=(0, 1))
  if k > 1:
    assert not np.allclose(wrong, vjp_ref(g)[1], atol=1e-3)


def test_conv_module_uses_tap_gradient_and_keeps_param_names(monkeypatch):
  monkeypatch.setenv("JAXSEMIC_CONV_WGRAD", "taps")
  from jaxsemic.layers import Conv
  m = Conv(32, 5, stride=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 8, 4))
  params = m.init(jax.random.PRNGKey(1), x)
  assert set(params["params"]["conv"]) == {"kernel", "bias"}
  loss = lambda p: jnp.sum(m.apply(p, x) ** 2)
  g_taps = jax.grad(loss)(params)
  monkeypatch.setenv("JAXSEMIC_CONV_WGRAD", "xla")
  g_xla = jax.grad(loss)(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g_taps, g_xla)
  jaxpr = str(jax.make_jaxpr(jax.grad(loss))(params))
  monkeypatch.setenv("JAXSEMIC_CONV_WGRAD", "taps")
  assert "dot_general" not in jaxpr  # XLA's weight gradient is a convolution
  assert "dot_general" in str(jax.make_jaxpr(jax.grad(loss))(params))
  # auto (CPU): the strided conv's input gradient is stride-1 phase convs, no lhs-dilated conv; XLA's w gradient.
  monkeypatch.setenv("JAXSEMIC_CONV_WGRAD", "auto")
  jaxpr = str(jax.make_jaxpr(jax.grad(lambda x: jnp.sum(m.apply(params, x) ** 2)))(x))
  assert "lhs_dilation=(2, 2)" not in jaxpr and "lhs_dilation=(1, 1)" in jaxpr
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), jax.grad(loss)(params), g_xla)
  monkeypatch.setenv("JAXSEMIC_CONV_WGRAD", "bogus")
  with pytest.raises(ValueError, match="JAXSEMIC_CONV_WGRAD"):
    m.apply(params, x)
