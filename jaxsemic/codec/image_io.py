"""Reading images into uint8 RGB with stated conversions, and writing PNGs atomically."""

from __future__ import annotations

import os
import sys

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jaxsemic import io
from jaxsemic.errors import UserError

Image.MAX_IMAGE_PIXELS = 1 << 28  # ~268 Mpx; larger inputs are refused rather than risk exhausting memory


def _to_uint8(a: np.ndarray) -> np.ndarray:
  """16-bit (or 32-bit integer) samples -> 8-bit by rounding v / 257 (exact for 8-bit-expanded images)."""
  if a.dtype == np.uint8:
    return a
  if a.dtype in (np.uint16, np.int32, np.int64, np.uint32):
    return np.clip(np.round(a.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
  if a.dtype == bool:
    return a.astype(np.uint8) * 255
  raise UserError(f"unsupported sample type {a.dtype}")


def _float_to_uint8(a: np.ndarray, path: str) -> tuple[np.ndarray, str]:
  """Float samples mapped by their range: [0, 1] scaled by 255, [0, 255] rounded; anything else refused."""
  if not np.isfinite(a).all():
    raise UserError(f"{path} has non-finite float samples")
  lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
  if lo >= 0 and hi <= 1:
    return np.round(a * 255.0).astype(np.uint8), "float samples in [0, 1] scaled by 255"
  if lo >= 0 and hi <= 255:
    return np.round(a).astype(np.uint8), "float samples in [0, 255] rounded"
  raise UserError(f"{path} has float samples in [{lo:g}, {hi:g}]; convert it to 8 or 16 bits with a chosen range")


def read_image(path: str, *, drop_alpha: bool = False, quiet: bool = False) -> np.ndarray:
  """Any Pillow-readable image -> uint8 [H, W, 3].

  Conversions: the EXIF orientation is applied (as viewers do); a multi-frame file (animated GIF, TIFF pages)
  gives its first frame; grayscale is replicated to three channels; 16-bit samples are rounded to 8 bits
  (v / 257); float samples are mapped by their range (`_float_to_uint8`); palette images are expanded; an alpha channel that is fully opaque is dropped with a note, a
  non-opaque one is refused unless `drop_alpha` (then it is discarded, not composited).
  """
  if not os.path.isfile(path):
    raise UserError(f"input not found: {path}")
  notes = []
  try:
    with Image.open(path) as im:
      frames = getattr(im, "n_frames", 1)
      if frames > 1:
        im.seek(0)
        notes.append(f"{frames} frames, coding the first")
      im.load()
      orientation = im.getexif().get(0x0112, 1)
      if orientation not in (None, 1):
        im = ImageOps.exif_transpose(im)
        notes.append(f"EXIF orientation {orientation} applied")
      mode = im.mode
      if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
      if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im)
        if a.dtype != np.uint8 and a.max(initial=0) <= 255 and mode == "I":
          a = a.astype(np.uint8)
        a = _to_uint8(a if a.dtype != np.int32 else a.astype(np.uint32))
      elif mode in ("RGB", "RGBA", "L", "LA", "1"):
        a = np.asarray(im)
      elif mode == "F":
        a, note = _float_to_uint8(np.asarray(im, np.float64), path)
        notes.append(note)
      elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La", "PA"):
        a = np.asarray(im.convert("RGBA" if "A" in mode or "a" in mode else "RGB"))
      else:
        a = np.asarray(im.convert("RGB"))
  except UserError:
    raise
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise UserError(f"cannot read image {path}: {type(e).__name__}: {e}") from e
  if notes and not quiet:
    print(f"note: {path}: {'; '.join(notes)}", file=sys.stderr)
  if a.dtype == bool:
    a = a.astype(np.uint8) * 255
  a = _to_uint8(a)
  if a.ndim == 2:
    a = a[..., None]
  if a.shape[-1] in (2, 4):  # LA / RGBA
    alpha = a[..., -1]
    a = a[..., :-1]
    if not np.all(alpha == 255) and not drop_alpha:
      raise UserError(f"{path} has transparency, which the codec does not code; pass --drop-alpha to "
                      "discard the alpha channel")
    if not quiet:
      print(f"note: {path}: alpha channel dropped", file=sys.stderr)
  if a.shape[-1] == 1:
    a = np.repeat(a, 3, axis=-1)
  if a.shape[0] == 0 or a.shape[1] == 0:
    raise UserError(f"{path} is empty")
  return np.ascontiguousarray(a)


check_output = io.check_output  # the one policy for outputs (jaxsemic.io)
write_atomic = io.write_bytes


def write_png(path: str, image: np.ndarray, force: bool = False) -> None:
  """Saves uint8 [H, W, 3] as PNG atomically."""
  import io as std_io
  buf = std_io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG")
  write_atomic(path, buf.getvalue(), force)
