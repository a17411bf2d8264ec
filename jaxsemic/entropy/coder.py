"""Range coding of integer symbols with `constriction`, driven by the integer tables of `entropy.tables`.

Symbols are coded in groups that share a table, groups in increasing table index, positions within a group in
row-major order; the decoder knows every table index before decoding, so it walks the same order. A symbol
outside its table's range is coded as the escape symbol followed by its value (zig-zag, bit length, then 8-bit
chunks, all with uniform models), so nothing is ever clipped.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import constriction
import numpy as np

from jaxsemic.entropy.tables import PRECISION, CodingTables

_model = constriction.stream.model
_NBITS = _model.Uniform(33)
_BYTE = _model.Uniform(256)


class StreamError(ValueError):
  """A range-coded stream that cannot be decoded with the model's tables (corrupt or not made by this model)."""


def _read(decoder, model, count: int) -> np.ndarray:
  """`count` symbols from a RangeDecoder; constriction's AssertionError on invalid data becomes a StreamError."""
  try:
    return np.asarray(decoder.decode(model, count), np.int64)
  except (AssertionError, ValueError, RuntimeError, OverflowError) as e:  # raised by the Rust extension
    raise StreamError(f"invalid range-coded data ({str(e).strip() or type(e).__name__})") from e


class TableCoder:
  """Encodes and decodes int32 arrays against a `CodingTables` stack (models built once, lazily)."""

  def __init__(self, tables: CodingTables):
    self.tables = tables

  @functools.lru_cache(maxsize=None)
  def _categorical(self, k: int):
    n = int(self.tables.length[k])
    probs = self.tables.pmf[k, :n].astype(np.float64) / float(1 << PRECISION)
    return _model.Categorical(probs, perfect=False)

  def min_bits(self) -> np.ndarray:
    """The fewest bits any one symbol can cost with each table, -log2(max pmf) [T] (a lower bound of its size)."""
    return -np.log2(self.tables.pmf.max(axis=1).astype(np.float64) / float(1 << PRECISION))

  def encode(self, encoder, values: np.ndarray, indexes: np.ndarray) -> None:
    """Appends `values` (any shape) coded with table `indexes` (same shape) to a RangeEncoder."""
    values = np.asarray(values, np.int64).ravel()
    indexes = np.asarray(indexes, np.int64).ravel()
    if values.shape != indexes.shape:
      raise ValueError("values and indexes differ in shape")
    for k, pos in _groups(indexes):
      n = int(self.tables.length[k])
      sym = values[pos] - int(self.tables.offset[k])
      escaped = (sym < 0) | (sym >= n - 1)
      encoder.encode(np.where(escaped, n - 1, sym).astype(np.int32), self._categorical(int(k)))
      if escaped.any():
        _encode_raw(encoder, values[pos][escaped])

  def decode(self, decoder, indexes: np.ndarray) -> np.ndarray:
    """Reads values for table `indexes` from a RangeDecoder, in the encoder's order; returns int32."""
    shape = np.shape(indexes)
    indexes = np.asarray(indexes, np.int64).ravel()
    out = np.zeros(indexes.shape, np.int64)
    for k, pos in _groups(indexes):
      n = int(self.tables.length[k])
      sym = _read(decoder, self._categorical(int(k)), len(pos))
      vals = sym + int(self.tables.offset[k])
      escaped = sym == n - 1
      if escaped.any():
        vals[escaped] = _decode_raw(decoder, int(escaped.sum()))
      out[pos] = vals
    return out.reshape(shape).astype(np.int32)


def _groups(indexes: np.ndarray):
  """(table index, positions in row-major order) for each distinct index, ascending.

  One stable sort; indices are few (< 65536), so numpy's radix sort on uint16 does it in linear time.
  """
  counts = np.bincount(indexes)
  key = indexes.astype(np.uint16) if len(counts) <= 1 << 16 else indexes
  order = np.argsort(key, kind="stable")
  start = 0
  for k in np.flatnonzero(counts):
    end = start + int(counts[k])
    yield int(k), order[start:end]
    start = end


def _encode_raw(encoder, values: np.ndarray) -> None:
  """Zig-zag values, then their bit lengths (0..32), then 8-bit chunks, least significant first."""
  v = np.asarray(values, np.int64)
  u = np.where(v >= 0, 2 * v, -2 * v - 1).astype(np.uint64)
  nbits = _bit_length(u)
  encoder.encode(nbits.astype(np.int32), _NBITS)
  owner, byte = _chunk_layout((nbits + 7) // 8)
  if len(owner):
    encoder.encode(((u[owner] >> (8 * byte).astype(np.uint64)) & np.uint64(0xFF)).astype(np.int32), _BYTE)


def _decode_raw(decoder, count: int) -> np.ndarray:
  nbits = _read(decoder, _NBITS, count)
  owner, byte = _chunk_layout((nbits + 7) // 8)
  chunks = _read(decoder, _BYTE, len(owner)) if len(owner) else np.zeros(0, np.int64)
  u = np.zeros(count, np.int64)
  np.add.at(u, owner, chunks << (8 * byte))  # < 2**40 for any nbits <= 32 and chunk < 256: no overflow
  return np.where(u % 2 == 0, u // 2, -(u + 1) // 2)


_POWERS_OF_TWO = np.uint64(1) << np.arange(64, dtype=np.uint64)


def _bit_length(u: np.ndarray) -> np.ndarray:
  """`int.bit_length` of each uint64: how many powers of two are <= u."""
  return np.searchsorted(_POWERS_OF_TWO, u, side="right").astype(np.int64)


def _chunk_layout(nchunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(value index, byte index) of every 8-bit chunk, value by value, least significant byte first."""
  owner = np.repeat(np.arange(len(nchunks)), nchunks)
  starts = np.cumsum(nchunks) - nchunks
  return owner, np.arange(len(owner)) - starts[owner]


def new_encoder():
  """A fresh range encoder (a queue: decoding order equals encoding order)."""
  return constriction.stream.queue.RangeEncoder()


def finish(encoder) -> bytes:
  """The compressed words of an encoder as bytes (little-endian uint32)."""
  return np.asarray(encoder.get_compressed(), "<u4").tobytes()


_OPEN_DECODERS: contextvars.ContextVar[list | None] = contextvars.ContextVar("open_decoders", default=None)


def new_decoder(data: bytes):
  """A range decoder over bytes produced by `finish` (watched by an enclosing `all_consumed`)."""
  if len(data) % 4:
    raise StreamError("range-coded stream length is not a multiple of 4 bytes")
  decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))
  watched = _OPEN_DECODERS.get()
  if watched is not None:
    watched.append(decoder)
  return decoder


@contextlib.contextmanager
def all_consumed():
  """Every decoder `new_decoder` makes inside the block must have read its whole stream when the block ends.

  A stream from `finish` is used up exactly by its symbols (constriction's `maybe_exhausted` is then true; false
  means words are left), so a stream whose length moved into a neighbour's is a StreamError, not an image.
  """
  watched: list = []
  token = _OPEN_DECODERS.set(watched)
  try:
    yield
  finally:
    _OPEN_DECODERS.reset(token)
  left = [i for i, d in enumerate(watched) if not d.maybe_exhausted()]
  if left:
    raise StreamError(f"range-coded stream {left[0]} has data left after its last symbol (a wrong stream length, "
                      f"or a stream of another image)")
