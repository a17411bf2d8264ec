"""LPIPS in JAX against torch references: random weights always; the real weights when converted."""

import importlib.util
import os
import sys
import types

import jax
import numpy as np
import pytest
from skimage import data

from jaxsemic.eval.metrics.lpips import LPIPS, load_lpips, lpips_weights_path

torch = pytest.importorskip("torch")


def _images(size=64):
  rng = np.random.default_rng(0)
  x = data.astronaut()[100:100 + size, 180:180 + size].astype(np.float32) / 255
  ys = [np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1), np.round(x * 8) / 8, np.roll(x, 2, axis=1)]
  return np.stack([x] * 3), np.stack(ys).astype(np.float32)


def _torch_features(net, backbone):
  """torchvision's `features` Sequential layout for alexnet / vgg16, filled from our params."""
  nn = torch.nn
  layers = []

  def conv(name, **kw):
    k = np.asarray(backbone[name]["kernel"])
    c = nn.Conv2d(k.shape[2], k.shape[3], k.shape[0], **kw)
    c.weight.data = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())  # HWIO -> OIHW
    c.bias.data = torch.from_numpy(np.asarray(backbone[name]["bias"]).copy())
    return [c, nn.ReLU()]

  if net == "alex":
    layers += conv("conv1", stride=4, padding=2) + [nn.MaxPool2d(3, 2)]
    layers += conv("conv2", padding=2) + [nn.MaxPool2d(3, 2)]
    layers += conv("conv3", padding=1) + conv("conv4", padding=1) + conv("conv5", padding=1)
  else:
    for b, n in enumerate((2, 2, 3, 3, 3), 1):
      layers += [nn.MaxPool2d(2, 2)] if b > 1 else []
      for i in range(1, n + 1):
        layers += conv(f"conv{b}_{i}", padding=1)
  return nn.Sequential(*layers)


def _reference_lpips(net, params, x, y):
  """LPIPS v0.1 written directly in torch (Zhang et al. 2018, eq. 1)."""
  feats = _torch_features(net, params["backbone"]).eval()
  taps = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}[net]
  shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
  scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

  def run(img):
    h = (torch.from_numpy(img).permute(0, 3, 1, 2) * 2 - 1 - shift) / scale
    outs = []
    for i, layer in enumerate(feats):
      h = layer(h)
      if i in taps:
        outs.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
    return outs

  with torch.no_grad():
    total = 0
    for i, (a, b) in enumerate(zip(run(x), run(y))):
      w = torch.from_numpy(np.asarray(params[f"lin{i}"]).copy()).view(1, -1, 1, 1)
      total = total + ((a - b) ** 2 * w).sum(1).mean((1, 2))
  return total.numpy()


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_random_weights_match_torch_reference(net):
  x, y = _images(64 if net == "alex" else 32)
  model = LPIPS(net)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(1), x[:1], y[:1]))["params"]
  rng = np.random.default_rng(2)
  params = jax.tree.map(lambda s: (rng.normal(size=s.shape) * 0.1).astype(np.float32), shapes)
  params = {k: np.abs(v) if k.startswith("lin") else v for k, v in params.items()}
  apply = jax.jit(model.apply)
  got = np.asarray(apply({"params": params}, x, y))
  want = _reference_lpips(net, params, x, y)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  params["lin2"] = params["lin2"] * 1.5  # the check can fail: one layer's weights changed
  assert not np.allclose(np.asarray(apply({"params": params}, x, y)), want, rtol=1e-3, atol=1e-6)


def _converted(net):
  return os.path.isfile(lpips_weights_path(net))


@pytest.mark.slow
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_real_weights_match_official_lpips_code(net, monkeypatch):
  """Official `lpips` package code (its ScalingLayer, slices, lins) on the same converted weights."""
  if not _converted(net) or importlib.util.find_spec("lpips") is None:
    pytest.skip("needs tools/convert_lpips_jax.py output and `pip install --no-deps lpips`")
  from jaxsemic.eval.metrics.weights import load_params
  params = load_params(lpips_weights_path(net), "")
  fake = types.ModuleType("torchvision")
  fake.models = types.SimpleNamespace(
      alexnet=lambda **_: types.SimpleNamespace(features=_torch_features("alex", params["backbone"])),
      vgg16=lambda **_: types.SimpleNamespace(features=_torch_features("vgg", params["backbone"])))
  monkeypatch.setitem(sys.modules, "torchvision", fake)
  for mod in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
    monkeypatch.delitem(sys.modules, mod)
  import lpips
  ref = lpips.LPIPS(net=net, version="0.1", verbose=False).eval()  # loads its own v0.1 lin weights
  x, y = _images()
  with torch.no_grad():
    want = ref(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y).permute(0, 3, 1, 2),
               normalize=True).reshape(-1).numpy()
  got = np.asarray(load_lpips(net)(x, y))
  np.testing.assert_allclose(got, want, atol=1e-4)
  assert want.min() > 0.01  # real, non-degenerate distances
