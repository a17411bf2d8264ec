"""Splitting images into square patches for FID/KID on small sets (HiFiC, Mentzer et al. 2020, App. A).

With few large images (Kodak: 24), FID over whole images is dominated by the rank-deficient covariance
of 2048-d features. HiFiC instead computes it over p x p patches: the floor(H/p) * floor(W/p)
non-overlapping patches of a grid at the origin and, optionally, the (floor(H/p)-1) * (floor(W/p)-1)
patches of a second grid shifted by p/2 in both directions. Kodak (768x512, p = 256): 6 + 2 patches each.
"""

from __future__ import annotations

import numpy as np


def patch_origins(height: int, width: int, size: int, shifted: bool = True) -> list[tuple[int, int]]:
  """Top-left corners (row, col) of the grid patches, then of the half-shifted grid's."""
  rows, cols = height // size, width // size
  origins = [(r * size, c * size) for r in range(rows) for c in range(cols)]
  if shifted:
    half = size // 2
    origins += [(half + r * size, half + c * size) for r in range(rows - 1) for c in range(cols - 1)]
  return origins


def extract_patches(image: np.ndarray, size: int, shifted: bool = True) -> np.ndarray:
  """[H,W,C] -> [N,size,size,C] patches (N = 0 if the image is smaller than size)."""
  origins = patch_origins(image.shape[0], image.shape[1], size, shifted)
  if not origins:
    return np.zeros((0, size, size, image.shape[2]), image.dtype)
  return np.stack([image[r:r + size, c:c + size] for r, c in origins])
