"""Fixed tiny models and images of every registered family, for the golden-bitstream test (test_golden.py).

No random generator of JAX is used (its bits may differ between versions and backends): SELIC's weights come
from NumPy's PCG64, the zoo models are the stored CompressAI fixtures (tests/fixtures/compressai).
"""

from __future__ import annotations

import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SELIC = dict(name="selic", N=16, M=20, num_slices=4, max_support_slices=-1, charm_hidden=[16],
             fusion="concat", text_dim=8, upsample="tconv")


def numpy_params(abstract, constants, seed: int = 0):
  """Kernels ~ N(0, 1/fan_in) and factorized-prior biases ~ U(-1/2, 1/2) from NumPy; the rest as initialised."""
  import jax
  rng = np.random.default_rng(seed)

  def leaf(path, shape_dtype, const):
    key = jax.tree_util.keystr(path)
    shape = tuple(shape_dtype.shape)
    if key.endswith("['kernel']"):
      return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))).astype(np.float32)
    if "['z_prior']['bias" in key:
      return rng.uniform(-0.5, 0.5, shape).astype(np.float32)
    return np.asarray(const, np.float32)

  return jax.tree_util.tree_map_with_path(leaf, abstract, constants)


def selic_case():
  """(cfg dict, params, image [64,96,3] uint8, text [8]): a smooth synthetic image, a fixed text vector."""
  from jaxsemic.codec.model_io import abstract_params, init_params
  from jaxsemic.models import ModelConfig
  cfg = ModelConfig.from_any(SELIC)
  params = numpy_params(abstract_params(cfg), init_params(cfg, 0))
  yy, xx = np.mgrid[0:64, 0:96].astype(np.float32)
  image = np.stack([128 + 100 * np.sin(xx / 9.0 + yy / 17.0), 128 + 90 * np.cos(yy / 7.0),
                    (xx * 2 + yy) % 256], -1)
  text = np.linspace(-1.0, 1.0, 8).astype(np.float32)
  return SELIC, params, np.clip(np.round(image), 0, 255).astype(np.uint8), text


def zoo_case(name: str):
  """(state dict, image) of a CompressAI fixture."""
  with np.load(os.path.join(HERE, "fixtures", "compressai", f"{name}.npz")) as z:
    arrays = {k: z[k] for k in z.files}
  return {k[3:]: v for k, v in arrays.items() if k.startswith("sd/")}, arrays["image"]
