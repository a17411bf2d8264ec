"""LPIPS and DISTS in JAX against torch references: random weights always; real weights when converted."""

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


def _torch_features(net, backbone, pool=None):
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
      layers += [(pool or nn.MaxPool2d)(2, 2)] if b > 1 else []
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


class _L2Pool(torch.nn.Module):
  """DISTS's L2 pooling (3x3 Hann taps of x², stride 2, padding 1, then sqrt)."""

  def __init__(self, *_):
    super().__init__()
    a = np.hanning(5)[1:-1]
    self.g = torch.from_numpy((np.outer(a, a) / np.outer(a, a).sum()).astype(np.float32))

  def forward(self, x):
    c = x.shape[1]
    w = self.g[None, None].repeat(c, 1, 1, 1)
    return (torch.nn.functional.conv2d(x**2, w, stride=2, padding=1, groups=c) + 1e-12).sqrt()


def _reference_dists(params, x, y):
  """DISTS written directly in torch (Ding et al. 2020, eqs. 8-10)."""
  feats = _torch_features("vgg", params["backbone"], pool=_L2Pool).eval()
  mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
  std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

  def run(img):
    t = torch.from_numpy(img).permute(0, 3, 1, 2)
    outs, h = [t], (t - mean) / std
    for i, layer in enumerate(feats):
      h = layer(h)
      if i in (3, 8, 15, 22, 29):
        outs.append(h)
    return outs

  alpha, beta = (torch.from_numpy(np.asarray(params[k]).copy()) for k in ("alpha", "beta"))
  total, start, score = alpha.sum() + beta.sum(), 0, 0
  with torch.no_grad():
    for a, b in zip(run(x), run(y)):
      c = a.shape[1]
      al, be = alpha[start:start + c] / total, beta[start:start + c] / total
      start += c
      ma, mb = a.mean((2, 3)), b.mean((2, 3))
      va, vb = a.var((2, 3), unbiased=False), b.var((2, 3), unbiased=False)
      cov = (a * b).mean((2, 3)) - ma * mb
      score = score + (al * (2 * ma * mb + 1e-6) / (ma**2 + mb**2 + 1e-6)).sum(1)
      score = score + (be * (2 * cov + 1e-6) / (va + vb + 1e-6)).sum(1)
  return (1 - score).numpy()


def test_dists_random_weights_match_torch_reference():
  from jaxsemic.eval.metrics.dists import DISTS
  x, y = _images(32)
  model = DISTS()
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(1), x[:1], y[:1]))["params"]
  rng = np.random.default_rng(3)
  params = jax.tree.map(lambda s: (rng.normal(size=s.shape) * 0.1).astype(np.float32), shapes)
  params["alpha"], params["beta"] = (np.abs(params[k]) for k in ("alpha", "beta"))
  apply = jax.jit(model.apply)
  want = _reference_dists(params, x, y)
  np.testing.assert_allclose(np.asarray(apply({"params": params}, x, y)), want, atol=1e-5)
  params["beta"] = params["beta"] * np.linspace(0, 2, params["beta"].size, dtype=np.float32)
  assert not np.allclose(np.asarray(apply({"params": params}, x, y)), want, atol=1e-4)


@pytest.mark.slow
def test_dists_real_weights_match_official_code(monkeypatch):
  """DISTS-pytorch's own module (stages, L2 pooling, α/β split) on the same converted weights."""
  from jaxsemic.eval.metrics.dists import dists_weights_path, load_dists
  if not os.path.isfile(dists_weights_path()) or importlib.util.find_spec("DISTS_pytorch") is None:
    pytest.skip("needs tools/convert_dists.py output and `pip install --no-deps dists-pytorch`")
  from jaxsemic.eval.metrics.weights import load_params
  params = load_params(dists_weights_path(), "")
  fake = types.ModuleType("torchvision")
  fake.models = types.SimpleNamespace(
      vgg16=lambda **_: types.SimpleNamespace(features=_torch_features("vgg", params["backbone"])))
  fake.transforms = types.SimpleNamespace()
  monkeypatch.setitem(sys.modules, "torchvision", fake)
  for mod in [m for m in sys.modules if m.startswith("DISTS_pytorch")]:
    monkeypatch.delitem(sys.modules, mod)
  from DISTS_pytorch import DISTS_pt
  ref = DISTS_pt.DISTS(load_weights=False).eval()
  ref.alpha.data = torch.from_numpy(params["alpha"].reshape(1, -1, 1, 1).copy())
  ref.beta.data = torch.from_numpy(params["beta"].reshape(1, -1, 1, 1).copy())
  x, y = _images(96)
  with torch.no_grad():
    want = ref(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y).permute(0, 3, 1, 2)).numpy()
  got = np.asarray(load_dists()(x, y))
  np.testing.assert_allclose(got, want, atol=1e-4)
  assert want.min() > 0.01


def test_weight_files_round_trip_and_validation(tmp_path):
  """Transposed (non-contiguous) arrays survive save/load; mismatches against a tree are named."""
  from jaxsemic.eval.metrics.weights import load_params, save_params, shape_mismatches
  from jaxsemic.errors import UserError
  kernel = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1).transpose(2, 3, 1, 0)
  path = str(tmp_path / "w.safetensors")
  save_params(path, {"a": {"kernel": kernel}, "b": np.ones(3)}, source="test")
  loaded = load_params(path, "")
  np.testing.assert_array_equal(loaded["a"]["kernel"], kernel)
  abstract = {"a": {"kernel": jax.ShapeDtypeStruct((4, 1, 3, 2), np.float32)},
              "c": jax.ShapeDtypeStruct((3,), np.float32)}
  assert shape_mismatches(loaded, abstract) == ["b", "c"]
  loaded["a"]["kernel"] = kernel[:2]
  assert shape_mismatches(loaded, abstract) == ["b", "c", "a/kernel"]
  with pytest.raises(UserError, match="convert me"):
    load_params(str(tmp_path / "missing.safetensors"), "convert me")
