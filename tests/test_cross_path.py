"""Decoding gives the encoder's symbols when the decoder's float path differs from the encoder's.

The encoder runs here; the decoder runs in a subprocess on another float path: XLA:CPU's backend without
optimisation (other instruction selection and operation order: on this machine the decoded y_hat moves by
~1.2e-7), bfloat16 as the requested default matmul precision (which `family.coder_precision` overrides) and XLA's
own convolution gradient. A third test nudges every weight by one ulp. A symbol decoded differently would
desynchronise the range decoder and move y_hat by ~1 or more.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO
from golden_cases import selic_case
from jaxsemic.codec import api
from jaxsemic.codec.model_io import CodecModel, save_model

DECODER = textwrap.dedent("""
    import sys, numpy as np
    from jaxsemic.codec import api
    from jaxsemic.codec.model_io import load_model
    model = load_model(sys.argv[1])
    outs = {}
    for i, path in enumerate(sys.argv[3:]):
      img, y_hat = api.decompress(model, open(path, "rb").read(), return_latents=True)
      outs[f"img{i}"], outs[f"y{i}"] = img, y_hat
    np.savez(sys.argv[2], **outs)
""")
OTHER_FLOAT_PATH = {"XLA_FLAGS": "--xla_backend_optimization_level=0", "JAX_DEFAULT_MATMUL_PRECISION": "bfloat16",
                    "JAXSEMIC_CONV_WGRAD": "xla", "JAX_PLATFORMS": "cpu"}


@pytest.fixture(scope="module")
def golden_selic():
  cfg, params, image, text = selic_case()
  return cfg, params, CodecModel.from_params(params, cfg), image, text


def _images(image: np.ndarray) -> np.ndarray:
  """Three different images of one size: the golden image, its mirror, a darker copy."""
  return np.stack([image, image[:, ::-1], (image // 2 + 40).astype(np.uint8)])


def test_batch_size_does_not_change_the_bitstream(golden_selic):
  _, _, model, image, text = golden_selic
  imgs = _images(image)
  texts = np.stack([text, -text, text * 0])
  batch, _ = api.compress_batch(model, imgs, texts)
  for n in range(3):
    single, _ = api.compress(model, imgs[n], texts[n])
    assert single == batch[n], f"image {n}: batch-of-3 and single-image encodings differ"


def test_decoder_on_another_float_path_decodes_the_same_symbols(golden_selic, tmp_path):
  cfg, params, model, image, text = golden_selic
  save_model(str(tmp_path / "model"), params, cfg)
  imgs = _images(image)
  paths, ref = [], []
  for n, img in enumerate(imgs):
    data, _ = api.compress(model, img, text)
    (tmp_path / f"{n}.jsc").write_bytes(data)
    paths.append(str(tmp_path / f"{n}.jsc"))
    ref.append(api.decompress(model, data, return_latents=True))
  (tmp_path / "decode.py").write_text(DECODER)
  r = subprocess.run([sys.executable, str(tmp_path / "decode.py"), str(tmp_path / "model"),
                      str(tmp_path / "out.npz"), *paths], capture_output=True, text=True, cwd=REPO,
                     env=dict(os.environ, **OTHER_FLOAT_PATH), timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  differs = False
  with np.load(tmp_path / "out.npz") as out:
    for n, (img, y_hat) in enumerate(ref):
      gap = np.abs(out[f"y{n}"] - y_hat).max()
      assert gap < 1e-3, f"image {n}: y_hat moved by {gap}: the decoder read other symbols"
      assert np.abs(out[f"img{n}"].astype(int) - img).max() <= 1
      differs |= bool(gap > 0)
  if not differs:
    pytest.skip("decoded the same symbols, but the float path did not differ on this machine")


def test_decoder_with_weights_one_ulp_off_decodes_the_same_symbols(golden_selic):
  """Every weight moved by one float32 ulp (as another machine's rounding might): same symbols, same tables."""
  import jax
  cfg, params, model, image, text = golden_selic
  data, _ = api.compress(model, image, text)
  img, y_hat = api.decompress(model, data, return_latents=True)
  nudged = jax.tree.map(lambda a: np.nextafter(a, np.float32(np.inf)), params)
  other = CodecModel(model.cfg, nudged, model.tables, model.model_id)
  img2, y_hat2 = api.decompress(other, data, return_latents=True)
  assert np.any(y_hat2 != y_hat), "the nudged weights did not change the decoder's floats"
  gap = np.abs(y_hat2 - y_hat).max()
  assert gap < 1e-3, f"y_hat moved by {gap}: the decoder read other symbols"
  assert np.abs(img2.astype(int) - img).max() <= 1
