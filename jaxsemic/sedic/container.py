"""The `.sedic` container (docs/bitstream.md): header, LEB128 sizes and stream lengths, payloads, CRC-32.

One file per image: the reference image's sub-streams (embedded, not a nested `.jsc`), the text stream and the
mask stream. Bits per component as in the paper's Table VIII come from `component_bits`.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np

from jaxsemic.errors import UserError
from jaxsemic.sedic import maskcode, textcode
from jaxsemic.sedic.descriptions import MAX_LIMIT, MAX_OBJECTS, Descriptions, from_texts, texts

MAGIC = b"SDC\x1a"
VERSION = 3  # written
# The embedded reference sub-streams are those of a .jsc file of the same format version as the .sedic file
# (versions 2 and 3: a context-model reference codes y diagonal by diagonal, version 3 with the entropy
# parameters as matrix products; version 1: in raster order). The rest of the container is the same in all three.
READABLE_VERSIONS = (1, 2, 3)
MAX_SIDE = 1 << 16
MAX_REF_STREAMS = 16
_J_MASK = 0b11
_NAMES = 1 << 2
_MASKS = 1 << 3
_RESERVED = 0xF0


@dataclasses.dataclass(frozen=True)
class SedicFile:
  """A parsed .sedic file."""

  ref_model_id: bytes  # 8 bytes: the reference codec's model id (as in .jsc)
  text_model_id: int  # textcode.MODELS key
  height: int
  width: int
  j: int  # objects sent (0..3)
  names_sent: bool  # object names are in the text stream (needed to choose token indices)
  l_d: int  # word limits used by the encoder (informative: paper Table V)
  l_all: int
  ref_streams: tuple[bytes, ...]
  text_stream: bytes
  mask_stream: bytes | None  # None when no masks are sent
  version: int = VERSION  # format version, also the .jsc format version of `ref_streams`

  @property
  def n_texts(self) -> int:
    """Strings in the text stream: overall, then (name, details) or details per object."""
    return 1 + self.j * (2 if self.names_sent else 1)


def leb128(v: int) -> bytes:
  """Unsigned LEB128: 7 bits per byte, least significant first, high bit = more bytes follow."""
  if v < 0:
    raise ValueError("LEB128 values are non-negative")
  out = bytearray()
  while True:
    byte, v = v & 0x7F, v >> 7
    out.append(byte | (0x80 if v else 0))
    if not v:
      return bytes(out)


def read_leb128(data: bytes, off: int, what: str) -> tuple[int, int]:
  """(value, next offset); UserError if truncated, longer than 5 bytes or not in its shortest form."""
  v = 0
  for i in range(5):
    if off + i >= len(data):
      raise UserError(f".sedic file is truncated ({what})")
    byte = data[off + i]
    v |= (byte & 0x7F) << (7 * i)
    if not byte & 0x80:
      if byte == 0 and i:
        raise UserError(f".sedic file is corrupt ({what} is not in shortest form)")
      return v, off + i + 1
  raise UserError(f".sedic file is corrupt ({what} is too long)")


def _check(f: SedicFile) -> None:
  """Field ranges shared by pack and unpack (UserError one-liners)."""
  if len(f.ref_model_id) != 8:
    raise UserError("reference model id must be 8 bytes")
  if not (0 < f.height <= MAX_SIDE and 0 < f.width <= MAX_SIDE):
    raise UserError(f".sedic image size {f.width}x{f.height} is invalid")
  if not 0 <= f.j <= MAX_OBJECTS:
    raise UserError(f".sedic J must be in 0..{MAX_OBJECTS}, got {f.j}")
  if not (0 <= f.l_d <= MAX_LIMIT and 0 <= f.l_all <= MAX_LIMIT and 0 <= f.text_model_id <= 255):
    raise UserError(".sedic word limits and text model id must be bytes (0..255)")
  if not 0 < len(f.ref_streams) <= MAX_REF_STREAMS:
    raise UserError(f".sedic needs 1..{MAX_REF_STREAMS} reference sub-streams, got {len(f.ref_streams)}")
  if f.mask_stream is not None and f.j == 0:
    raise UserError(".sedic file with J = 0 cannot carry masks")
  if f.version not in READABLE_VERSIONS:
    raise UserError(f".sedic format version {f.version} is not supported")


def pack(f: SedicFile) -> bytes:
  """Serialises a SedicFile; the CRC-32 covers every preceding byte."""
  _check(f)
  flags = f.j | (_NAMES if f.names_sent else 0) | (_MASKS if f.mask_stream is not None else 0)
  streams = list(f.ref_streams) + [f.text_stream] + ([f.mask_stream] if f.mask_stream is not None else [])
  head = (MAGIC + bytes([f.version, flags]) + leb128(f.height) + leb128(f.width) + f.ref_model_id
          + bytes([f.text_model_id, f.l_d, f.l_all, len(f.ref_streams)]))
  body = head + b"".join(leb128(len(s)) for s in streams) + b"".join(streams)
  return body + struct.pack("<I", zlib.crc32(body))


def unpack(data: bytes) -> SedicFile:
  """Parses and validates a .sedic file; UserError with a one-line reason if it is not a valid one.

  Checks, in order: magic, version, CRC-32, reserved flag bits, header fields, that the stream lengths add up to
  the file size.
  """
  data = bytes(data)
  if len(data) < 10 or data[:4] != MAGIC:
    raise UserError("not a jaxsemic .sedic file (bad magic or too short)")
  if data[4] not in READABLE_VERSIONS:
    raise UserError(f".sedic format version {data[4]} is not supported (this jaxsemic reads "
                    f"{', '.join(map(str, READABLE_VERSIONS))})")
  body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
  if zlib.crc32(body) != crc:
    raise UserError(".sedic file is corrupt or truncated (CRC-32 mismatch)")
  flags = body[5]
  if flags & _RESERVED:
    raise UserError(f".sedic file sets reserved flag bits ({flags:#04x})")
  height, off = read_leb128(body, 6, "height")
  width, off = read_leb128(body, off, "width")
  if off + 12 > len(body):
    raise UserError(".sedic file is truncated (header)")
  model_id = body[off:off + 8]
  text_id, l_d, l_all, n_ref = body[off + 8:off + 12]
  off += 12
  if not 0 < n_ref <= MAX_REF_STREAMS:
    raise UserError(f".sedic file declares {n_ref} reference sub-streams (1..{MAX_REF_STREAMS} allowed)")
  n = n_ref + 1 + (1 if flags & _MASKS else 0)
  lengths = []
  for i in range(n):
    length, off = read_leb128(body, off, f"length of stream {i}")
    lengths.append(length)
  if off + sum(lengths) != len(body):
    raise UserError(".sedic file is corrupt (stream lengths do not match the file size)")
  streams = []
  for length in lengths:
    streams.append(body[off:off + length])
    off += length
  f = SedicFile(model_id, text_id, height, width, flags & _J_MASK, bool(flags & _NAMES), l_d, l_all,
                tuple(streams[:n_ref]), streams[n_ref], streams[n_ref + 1] if flags & _MASKS else None, data[4])
  _check(f)
  return f


def component_bits(data: bytes) -> dict[str, int]:
  """Bits per component of a packed file (paper Table VIII): reference, text, masks, header (all the rest)."""
  f = unpack(data)
  bits = {"reference": 8 * sum(len(s) for s in f.ref_streams), "text": 8 * len(f.text_stream),
          "masks": 8 * len(f.mask_stream or b"")}
  bits["header"] = 8 * len(data) - sum(bits.values())
  bits["total"] = 8 * len(data)
  return bits


def check_reference(f: SedicFile, model_id: bytes) -> None:
  """UserError unless the file was made with the reference codec whose model id is given."""
  if f.ref_model_id != model_id:
    raise UserError(f".sedic file was made with reference model {f.ref_model_id.hex()}, "
                    f"not with the given {model_id.hex()}")


def encode_semantics(desc: Descriptions, masks: np.ndarray | None, names_sent: bool,
                     text_model: textcode.TextModel) -> tuple[bytes, bytes | None]:
  """(text stream, mask stream) for descriptions already limited to J objects and bool[J, h, w] latent masks."""
  text = textcode.encode_texts(texts(desc, names_sent), text_model)
  if masks is None:
    return text, None
  if len(masks) != len(desc.objects):
    raise UserError(f"{len(masks)} masks for {len(desc.objects)} objects")
  return text, maskcode.encode_masks(masks)


def decode_semantics(f: SedicFile) -> tuple[Descriptions, np.ndarray | None]:
  """The descriptions and the latent-grid masks bool[J, h, w] (None if not sent) of a parsed file."""
  strings = textcode.decode_texts(f.text_stream, f.n_texts, textcode.TextModel.load(f.text_model_id))
  desc = from_texts(strings, f.names_sent)
  if f.mask_stream is None:
    return desc, None
  return desc, maskcode.decode_masks(f.mask_stream, f.j, *maskcode.latent_hw(f.height, f.width))
