"""Exact integer-frequency range coding with `constriction`, shared by the SEDIC text and mask coders.

Models give each symbol an integer weight; weights of an n-symbol row sum to exactly `2**24 - n`. We pass the
weights to `constriction.stream.model.Categorical(perfect=False)` as float64 values. Its "fast" quantiser
computes `cdf[i] = floor(prefix_sum[i] * (2**24 - n) / sum) + i`; with `sum == 2**24 - n` the scale is exactly
1.0 and every operand is an integer below 2**24, so each IEEE-754 operation is exact and the coder's frequency
for symbol i is exactly `weight[i] + 1` on any machine (`quantised_frequencies` mirrors this; tests check it).

The stream is constriction's 32-bit words written big-endian (most significant byte first), so that cutting
trailing bytes means cutting the least significant bits of the final code point. The encoder keeps the shortest
byte string that, padded with zero bytes, still decodes to the same symbols (checked by decoding it), which
saves about 1-3 bytes of flush per stream; the decoder pads with zero bytes.
"""

from __future__ import annotations

import constriction
import numpy as np

from jaxsemic.errors import UserError

PRECISION = 24
TOTAL = 1 << PRECISION
_FAMILY = constriction.stream.model.Categorical(perfect=False)


def row_total(n: int) -> int:
  """The sum the integer weights of an n-symbol row must have."""
  return TOTAL - n


def quantised_frequencies(weights: np.ndarray) -> np.ndarray:
  """The coder's frequencies (out of 2**24) for integer weight rows: weight + 1."""
  return np.asarray(weights, np.int64) + 1


def check_rows(weights: np.ndarray) -> None:
  """Asserts the exactness precondition: integer rows of non-negative weights summing to 2**24 - n."""
  w = np.asarray(weights)
  if w.ndim != 2 or w.dtype.kind not in "iu" or (w < 0).any() or (w.sum(1) != row_total(w.shape[1])).any():
    raise ValueError("weight rows must be non-negative integers summing to 2**24 - n")


def ideal_bits(symbols: np.ndarray, weights: np.ndarray) -> float:
  """Information content of `symbols` under the coder's exact frequencies, in bits."""
  w = np.asarray(weights, np.int64)
  f = quantised_frequencies(w[np.arange(len(w)), np.asarray(symbols, np.int64)])
  return float(np.sum(PRECISION - np.log2(f.astype(np.float64))))


def _encode_words(symbols: np.ndarray, probs: np.ndarray) -> np.ndarray:
  enc = constriction.stream.queue.RangeEncoder()
  if len(symbols):
    enc.encode(symbols, _FAMILY, probs)
  return np.asarray(enc.get_compressed(), np.uint32)


def _words(data: bytes) -> np.ndarray:
  """Big-endian 32-bit words of `data`, zero-padded to a multiple of 4 bytes."""
  data = bytes(data) + b"\0" * (-len(data) % 4)
  return np.frombuffer(data, ">u4").astype(np.uint32)


def new_decoder(data: bytes):
  """A constriction range decoder over a stream written by `encode_rows`."""
  return constriction.stream.queue.RangeDecoder(_words(data))


# what constriction raises on data that no encoder could have written (a code point outside the coder's range)
_INVALID = (AssertionError, ValueError, RuntimeError)


def decode_one(decoder, weights: np.ndarray, what: str = "range-coded") -> int:
  """Decodes one symbol coded with one integer weight row; UserError if the data is not a valid stream."""
  probs = np.asarray(weights, np.float64).reshape(1, -1)
  try:
    return int(decoder.decode(_FAMILY, probs)[0])
  except _INVALID as e:
    raise UserError(f"{what} stream is corrupt (invalid code point)") from e


def _decodes_to(data: bytes, symbols: np.ndarray, probs: np.ndarray) -> bool:
  try:
    return bool(np.array_equal(np.asarray(new_decoder(data).decode(_FAMILY, probs)), symbols))
  except _INVALID:
    return False


def encode_rows(symbols: np.ndarray, weights: np.ndarray) -> bytes:
  """Range-codes symbols[i] with weight row weights[i] (rows as `check_rows`); the shortest valid byte string."""
  symbols = np.asarray(symbols, np.int32)
  if not len(symbols):
    return b""
  weights = np.asarray(weights, np.int64).reshape(len(symbols), -1)
  check_rows(weights)
  probs = weights.astype(np.float64)
  data = _encode_words(symbols, probs).astype(">u4").tobytes()
  value = int.from_bytes(data, "big")
  best = data
  for cut in range(1, min(len(data), 8) + 1):
    up = -(-value // (1 << (8 * cut)))  # round the code point up to a whole number of bytes
    if up.bit_length() > 8 * (len(data) - cut):
      continue
    cand = up.to_bytes(len(data) - cut, "big") if up else b""
    if _decodes_to(cand, symbols, probs):
      best = cand
  return best
