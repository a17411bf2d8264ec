"""The `.jsc` container (documented in docs/bitstream.md): header, sub-stream lengths, payload, CRC32."""

from __future__ import annotations

import dataclasses
import struct
import zlib

from jaxsemic.errors import UserError

MAGIC = b"JSC\x1a"
VERSION = 1
MAX_SIDE = 1 << 16
_HEADER = struct.Struct("<4sBB8sIIB")  # magic, version, flags, model id, height, width, n streams


@dataclasses.dataclass(frozen=True)
class Bitstream:
  """A parsed .jsc file."""

  model_id: bytes  # 8 bytes
  height: int
  width: int
  streams: tuple[bytes, ...]
  flags: int = 0


def pack(b: Bitstream) -> bytes:
  """Serialises a Bitstream; the CRC32 covers every preceding byte."""
  if len(b.model_id) != 8:
    raise ValueError("model id must be 8 bytes")
  head = _HEADER.pack(MAGIC, VERSION, b.flags, b.model_id, b.height, b.width, len(b.streams))
  lengths = b"".join(struct.pack("<I", len(s)) for s in b.streams)
  body = head + lengths + b"".join(b.streams)
  return body + struct.pack("<I", zlib.crc32(body))


def unpack(data: bytes) -> Bitstream:
  """Parses and validates a .jsc file; raises UserError with a one-line reason if it is not a valid one."""
  if len(data) < _HEADER.size + 4 or data[:4] != MAGIC:
    raise UserError("not a jaxsemic .jsc file (bad magic or too short)")
  body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
  magic, version, flags, model_id, h, w, n = _HEADER.unpack_from(body)
  if version != VERSION:
    raise UserError(f".jsc format version {version} is not supported (this jaxsemic reads {VERSION})")
  if zlib.crc32(body) != crc:
    raise UserError(".jsc file is corrupt or truncated (CRC32 mismatch)")
  if flags != 0:
    raise UserError(f".jsc header has reserved flag bits set ({flags:#04x}); this jaxsemic writes 0")
  off = _HEADER.size
  if len(body) < off + 4 * n:
    raise UserError(".jsc file is truncated (stream table)")
  lengths = struct.unpack_from(f"<{n}I", body, off)
  off += 4 * n
  if off + sum(lengths) != len(body):
    raise UserError(".jsc file is corrupt (stream lengths do not match the file size)")
  if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
    raise UserError(f".jsc file declares an invalid image size {w}x{h}")
  streams = []
  for length in lengths:
    streams.append(body[off:off + length])
    off += length
  return Bitstream(model_id, h, w, tuple(streams), flags)
