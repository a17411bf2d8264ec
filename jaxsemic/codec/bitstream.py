"""The `.jsc` container (documented in docs/bitstream.md): header, sub-stream lengths, payload, CRC32."""

from __future__ import annotations

import dataclasses
import struct
import zlib

from jaxsemic.errors import UserError

MAGIC = b"JSC\x1a"
VERSION = 3  # written; versions 1 and 2 differ only in the context models' y coding (docs/bitstream.md)
READABLE_VERSIONS = (1, 2, 3)
MAX_SIDE = 1 << 16
TILE_MULTIPLE = 64  # a tiled file's tile side is a multiple of this (the families' padding)
FLAG_TILED = 0x01  # flags bit 0: the image is coded in tiles (a u32 tile side follows the header)
_HEADER = struct.Struct("<4sBB8sIIB")  # magic, version, flags, model id, height, width, n streams (per tile)


@dataclasses.dataclass(frozen=True)
class Bitstream:
  """A parsed .jsc file."""

  model_id: bytes  # 8 bytes
  height: int
  width: int
  streams: tuple[bytes, ...]  # tiled: every tile's sub-streams, tile after tile in raster order
  flags: int = 0  # reserved bits; FLAG_TILED is set by `pack` when `tile` is non-zero
  tile: int = 0  # tile side in pixels (0: one tile, the format of untiled files)
  version: int = VERSION  # format version (the family decodes older versions' payloads with their own rules)


def tile_count(height: int, width: int, tile: int) -> int:
  """Tiles of side `tile` covering the image (1 for an untiled file)."""
  return 1 if tile == 0 else -(-height // tile) * -(-width // tile)


def pack(b: Bitstream) -> bytes:
  """Serialises a Bitstream; the CRC32 covers every preceding byte."""
  if len(b.model_id) != 8:
    raise ValueError("model id must be 8 bytes")
  tiles = tile_count(b.height, b.width, b.tile)
  if len(b.streams) % tiles:
    raise ValueError(f"{len(b.streams)} sub-streams do not split into {tiles} tiles")
  flags = b.flags | (FLAG_TILED if b.tile else 0)
  if b.version not in READABLE_VERSIONS:
    raise ValueError(f"unknown .jsc format version {b.version}")
  head = _HEADER.pack(MAGIC, b.version, flags, b.model_id, b.height, b.width, len(b.streams) // tiles)
  if b.tile:
    head += struct.pack("<I", b.tile)
  lengths = b"".join(struct.pack("<I", len(s)) for s in b.streams)
  body = head + lengths + b"".join(b.streams)
  return body + struct.pack("<I", zlib.crc32(body))


def unpack(data: bytes) -> Bitstream:
  """Parses and validates a .jsc file; raises UserError with a one-line reason if it is not a valid one."""
  if len(data) < _HEADER.size + 4 or data[:4] != MAGIC:
    raise UserError("not a jaxsemic .jsc file (bad magic or too short)")
  body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
  magic, version, flags, model_id, h, w, n = _HEADER.unpack_from(body)
  if version not in READABLE_VERSIONS:
    raise UserError(f".jsc format version {version} is not supported (this jaxsemic reads "
                    f"{', '.join(map(str, READABLE_VERSIONS))})")
  if zlib.crc32(body) != crc:
    raise UserError(".jsc file is corrupt or truncated (CRC32 mismatch)")
  if flags & ~FLAG_TILED:
    raise UserError(f".jsc header has reserved flag bits set ({flags:#04x}); this jaxsemic writes 0 or 1")
  if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
    raise UserError(f".jsc file declares an invalid image size {w}x{h}")
  off, tile = _HEADER.size, 0
  if flags & FLAG_TILED:
    if len(body) < off + 4:
      raise UserError(".jsc file is truncated (tile size)")
    (tile,) = struct.unpack_from("<I", body, off)
    off += 4
    if not (0 < tile <= MAX_SIDE and tile % TILE_MULTIPLE == 0):
      raise UserError(f".jsc file declares an invalid tile size {tile} (a multiple of {TILE_MULTIPLE})")
  n *= tile_count(h, w, tile)
  if len(body) < off + 4 * n:
    raise UserError(".jsc file is truncated (stream table)")
  lengths = struct.unpack_from(f"<{n}I", body, off)
  off += 4 * n
  if off + sum(lengths) != len(body):
    raise UserError(".jsc file is corrupt (stream lengths do not match the file size)")
  streams = []
  for length in lengths:
    streams.append(body[off:off + length])
    off += length
  return Bitstream(model_id, h, w, tuple(streams), flags & ~FLAG_TILED, tile, version)
