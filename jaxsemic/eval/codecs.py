"""Classic image codecs for `jaxsemic bench`: encode to bytes and decode back, per quality setting.

JPEG and WebP go through Pillow (as CompressAI's bench does); AVIF, JPEG XL and JPEG 2000 through
imagecodecs (libavif/aom, libjxl, OpenJPEG); HEVC intra 4:4:4 through ffmpeg's libx265 — the BPG
equivalent: JFIF YCbCr 4:4:4, 8 bit, one intra frame at a fixed QP, raw Annex-B stream.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from jaxsemic.errors import UserError


@dataclass(frozen=True)
class Codec:
  """One codec: encode(rgb_uint8, setting) -> bytes and decode(bytes, shape) -> rgb_uint8."""

  name: str
  library: Callable[[], str]  # version string, also the availability check
  setting: str  # what the swept number means
  settings: tuple[float, ...]  # default sweep, lowest rate first
  encode: Callable[[np.ndarray, float], bytes]
  decode: Callable[[bytes, tuple[int, int]], np.ndarray]


def _pillow_encode(fmt: str) -> Callable[[np.ndarray, float], bytes]:
  def encode(rgb: np.ndarray, quality: float) -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, quality=int(quality))
    return buf.getvalue()
  return encode


def _pillow_decode(data: bytes, shape: tuple[int, int]) -> np.ndarray:
  import io

  from PIL import Image
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert("RGB"))


def _pillow_version() -> str:
  import PIL
  return f"Pillow {PIL.__version__}"


def _pillow_webp_version() -> str:
  from PIL import features
  if not features.check("webp"):
    raise UserError("this Pillow was built without WebP support")
  return f"Pillow {_pillow_version()[7:]}, libwebp {features.version('webp')}"


def _imagecodecs(name: str) -> Callable[[], str]:
  """Version check for one imagecodecs codec."""
  def version() -> str:
    try:
      import imagecodecs
    except ImportError:
      raise UserError("this codec needs imagecodecs: pip install 'jaxsemic[eval]'") from None
    if not getattr(imagecodecs, name.upper()).available:
      raise UserError(f"imagecodecs was built without {name}")
    libs = dict(item.split("-", 1) for item in imagecodecs.version().split(", ") if "-" in item)
    lib = {"avif": "libavif", "jpegxl": "libjxl", "jpeg2k": "openjpeg"}[name]
    return f"imagecodecs {imagecodecs.__version__}, {lib} {libs.get(lib, '?')}"
  return version


def _avif_encode(rgb: np.ndarray, quality: float) -> bytes:
  import imagecodecs
  return bytes(imagecodecs.avif_encode(rgb, int(quality), pixelformat="444", speed=6))


def _jxl_encode(rgb: np.ndarray, distance: float) -> bytes:
  import imagecodecs
  return bytes(imagecodecs.jpegxl_encode(rgb, distance=float(distance), effort=7))


def _j2k_encode(rgb: np.ndarray, target_psnr: float) -> bytes:
  import imagecodecs
  return bytes(imagecodecs.jpeg2k_encode(rgb, int(target_psnr), codecformat="J2K"))


def _imagecodecs_decode(name: str) -> Callable[[bytes, tuple[int, int]], np.ndarray]:
  def decode(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    import imagecodecs
    return np.asarray(getattr(imagecodecs, f"{name}_decode")(data))[..., :3]
  return decode


# JFIF (full-range BT.601) YCbCr, the colour space bpgenc uses by default.
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114],
                        [-0.168736, -0.331264, 0.5],
                        [0.5, -0.418688, -0.081312]])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
  """uint8 RGB -> uint8 full-range YCbCr [H,W,3]."""
  ycc = rgb.astype(np.float64) @ _RGB_TO_YCC.T + np.array([0.0, 128.0, 128.0])
  return np.clip(np.round(ycc), 0, 255).astype(np.uint8)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
  """uint8 full-range YCbCr -> uint8 RGB [H,W,3]."""
  rgb = (ycc.astype(np.float64) - np.array([0.0, 128.0, 128.0])) @ np.linalg.inv(_RGB_TO_YCC).T
  return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _ffmpeg(args: list[str], data: bytes) -> bytes:
  proc = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", *args], input=data,
                        capture_output=True, check=False)
  if proc.returncode != 0:
    last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
    raise UserError(f"ffmpeg failed: {last[0]}")
  return proc.stdout


def _hevc_version() -> str:
  if shutil.which("ffmpeg") is None:
    raise UserError("hevc needs ffmpeg with libx265 on PATH (Debian: apt-get install ffmpeg)")
  out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True)
  if "libx265" not in out.stdout:
    raise UserError("this ffmpeg has no libx265 encoder")
  version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split()
  return f"ffmpeg {version[2]} libx265, YCbCr 4:4:4 8-bit full range, preset medium, tune psnr, intra"


# x265's --tune psnr: no psycho-visual RD / RDOQ and no adaptive quantisation (+0.7..1 dB on Kodak).
_X265_PSNR = "psy-rd=0:psy-rdoq=0:aq-mode=0:cutree=0"


def _hevc_encode(rgb: np.ndarray, qp: float) -> bytes:
  h, w, _ = rgb.shape
  planar = np.ascontiguousarray(rgb_to_ycbcr(rgb).transpose(2, 0, 1))
  return _ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv444p", "-color_range", "pc",
                  "-s", f"{w}x{h}", "-i", "-", "-frames:v", "1", "-c:v", "libx265",
                  "-preset", "medium",
                  "-x265-params", f"qp={int(qp)}:keyint=1:info=0:log-level=error:{_X265_PSNR}",
                  "-f", "hevc", "-"], planar.tobytes())


def _hevc_decode(data: bytes, shape: tuple[int, int]) -> np.ndarray:
  h, w = shape
  raw = _ffmpeg(["-f", "hevc", "-i", "-", "-f", "rawvideo", "-pix_fmt", "yuv444p", "-"], data)
  if len(raw) != 3 * h * w:
    raise UserError(f"ffmpeg decoded {len(raw)} bytes, expected {3 * h * w}")
  return ycbcr_to_rgb(np.frombuffer(raw, np.uint8).reshape(3, h, w).transpose(1, 2, 0))


_PILLOW_QUALITIES = tuple(range(5, 100, 5))  # CompressAI's run-benchmarks sweep (19 points)

CODECS: dict[str, Codec] = {
    "jpeg": Codec("JPEG", _pillow_version, "quality", _PILLOW_QUALITIES, _pillow_encode("jpeg"),
                  _pillow_decode),
    "webp": Codec("WebP", _pillow_webp_version, "quality", _PILLOW_QUALITIES,
                  _pillow_encode("webp"), _pillow_decode),
    "avif": Codec("AVIF", _imagecodecs("avif"), "quality (4:4:4, speed 6)",
                  (5, 10, 20, 30, 40, 50, 60, 70, 80, 90), _avif_encode, _imagecodecs_decode("avif")),
    "jpegxl": Codec("JPEG XL", _imagecodecs("jpegxl"), "distance (effort 7)",
                    (12, 8, 6, 4, 3, 2, 1.5, 1, 0.7, 0.5), _jxl_encode,
                    _imagecodecs_decode("jpegxl")),
    "jpeg2000": Codec("JPEG 2000", _imagecodecs("jpeg2k"), "target PSNR (dB)",
                      tuple(range(24, 46, 2)), _j2k_encode, _imagecodecs_decode("jpeg2k")),
    "hevc": Codec("HEVC 4:4:4 (x265)", _hevc_version, "QP",
                  (46, 43, 40, 37, 34, 31, 28, 25, 22), _hevc_encode, _hevc_decode),
}


def get_codec(name: str) -> Codec:
  """The codec called name, after checking its library is available (UserError otherwise)."""
  codec = CODECS.get(name.lower())
  if codec is None:
    raise UserError(f"unknown codec {name!r} (one of: {', '.join(CODECS)})")
  codec.library()
  return codec


def round_trip(codec: Codec, image: np.ndarray, setting: float) -> tuple[int, np.ndarray, float, float]:
  """(bytes, decoded image, encode seconds, decode seconds) of one image at one setting."""
  start = time.perf_counter()
  data = codec.encode(image, setting)
  encode_seconds = time.perf_counter() - start
  start = time.perf_counter()
  decoded = codec.decode(data, image.shape[:2])
  return len(data), decoded, encode_seconds, time.perf_counter() - start


def round_trip_file(codec_key: str, path: str, setting: float) -> tuple[int, np.ndarray, float, float]:
  """round_trip of an image file, by the codec's key: what `jaxsemic bench -j N`'s worker processes run
  (this module imports no JAX, so they start fast)."""
  from jaxsemic.eval.images import load_rgb  # pylint: disable=import-outside-toplevel
  return round_trip(CODECS[codec_key], load_rgb(path), setting)
