"""Forward parity of the zoo models with CompressAI (fixtures from tools/compressai_fixtures.py).

Each fixture holds a small CompressAI model's state dict, a fixed input and CompressAI's eval-mode outputs;
the imported Flax model must reproduce y, y_hat, the likelihoods and x_hat within 1e-4.
"""

import functools
import os

import jax
import numpy as np
import pytest

from jaxsemic.codec.model_io import abstract_params
from jaxsemic.errors import UserError
from jaxsemic.registry import build_model
from jaxsemic.zoo import ZOO_NAMES
from jaxsemic.zoo import compressai_import as cimport

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "compressai")
TOL = 1e-4


@functools.lru_cache(maxsize=None)
def load_fixture(name):
  """(state dict, arrays, cfg, params) of one architecture's fixture."""
  with np.load(os.path.join(FIXTURES, f"{name}.npz")) as z:
    arrays = {k: z[k] for k in z.files}
  state = {k[3:]: v for k, v in arrays.items() if k.startswith("sd/")}
  cfg = cimport.infer_config(name, state)
  params = cimport.convert(state, cfg, abstract_params(cfg))
  return state, arrays, cfg, params


def nhwc(a):
  return np.asarray(a).transpose(0, 2, 3, 1)


@functools.lru_cache(maxsize=None)
def forward_fn(cfg):
  module = build_model(cfg)
  return jax.jit(lambda p, x: module.apply({"params": p}, x, train=False))


def run(cfg, params, image):
  return forward_fn(cfg)(params, image[None].astype(np.float32) / 255.0)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_forward_matches_compressai(name):
  _, ref, cfg, params = load_fixture(name)
  out = run(cfg, params, ref["image"])
  np.testing.assert_allclose(out["y"], nhwc(ref["y"]), atol=TOL, rtol=0)
  np.testing.assert_allclose(out["y_hat"], nhwc(ref["y_hat"]), atol=TOL, rtol=0)
  np.testing.assert_allclose(out["likelihoods"]["y"], nhwc(ref["likelihoods_y"]), atol=TOL, rtol=0)
  if "likelihoods_z" in ref:
    np.testing.assert_allclose(out["likelihoods"]["z"], nhwc(ref["likelihoods_z"]), atol=TOL, rtol=0)
  np.testing.assert_allclose(out["x_hat"], nhwc(ref["x_hat"]), atol=TOL, rtol=0)


@pytest.mark.parametrize("name,key", [("bmshj2018-factorized", "entropy_bottleneck.quantiles"),
                                      ("cheng2020-attn", "g_s.0.conv_b.3.weight"),
                                      ("mbt2018", "context_prediction.weight")])
def test_parity_can_fail(name, key):
  """Perturbing one tensor (the medians, an attention conv, the context model) breaks the agreement."""
  state, ref, cfg, _ = load_fixture(name)
  bad = dict(state)
  bad[key] = state[key] + 0.3
  out = run(cfg, cimport.convert(bad, cfg, abstract_params(cfg)), ref["image"])
  diffs = [np.abs(np.asarray(out[k]) - nhwc(ref[k])).max() for k in ("y_hat", "x_hat")]
  diffs.append(np.abs(np.asarray(out["likelihoods"]["y"]) - nhwc(ref["likelihoods_y"])).max())
  assert max(diffs) > 100 * TOL


def test_import_errors_name_the_tensor():
  state, _, cfg, _ = load_fixture("mbt2018")
  abstract = abstract_params(cfg)
  missing = {k: v for k, v in state.items() if k != "h_s.2.weight"}
  with pytest.raises(UserError, match=r"missing tensor 'h_s\.2\.weight'"):
    cimport.convert(missing, cfg, abstract)
  wrong = dict(state, **{"g_a.2.weight": state["g_a.2.weight"][:, :-1]})
  with pytest.raises(UserError, match=r"'g_a\.2\.weight' has shape"):
    cimport.convert(wrong, cfg, abstract)
  with pytest.raises(UserError, match="unexpected tensor"):
    cimport.convert(dict(state, **{"extra.weight": np.zeros(3)}), cfg, abstract)
  with pytest.raises(UserError, match="not a CompressAI cheng2020-attn"):
    cimport.infer_config("cheng2020-attn", state)
