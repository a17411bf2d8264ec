"""Lossless coding of SEDIC texts: an adaptive byte-level PPM model in integers, range-coded (paper Sec. III-A).

The paper Huffman-codes the descriptions; a context model with a prior trained on captions needs about half the
bits (`../shared/notes/sedic-design.md` §2, `benchmarks/sedic_bits.py`). All strings of an image go in one
stream, each as its UTF-8 bytes followed by an end symbol (256); the alphabet is 257 symbols.

Model (PPM-C blending with exclusion, Cleary & Witten 1984 / Moffat 1990): for the contexts of order 0..K (the
last k bytes; an end symbol reads as b"\\n" in a context), counts c = prior + `increment` × counts seen so far in
this stream. From order −1 (uniform) up to K, each seen context replaces the distribution q by
  q'(s) = c(s) / (n + e·u)                         for symbols seen in the context,
  q'(s) = e·u / (n + e·u) · q(s) / Σ_{unseen} q    for the others (exclusion),
with n = Σc, u = #{s : c(s) > 0} and escape factor e. Everything is integer arithmetic on weights that sum to
2**24 − 257 (floor divisions, the remainder goes to the largest weight, lowest index on ties), so encoder and
decoder compute the same rows on any machine; `rangecode` turns the rows into exact coder frequencies.

The prior ships as package data (`text_prior_coco.npz`, built by `tools/train_text_prior.py` from COCO captions,
CC BY 4.0) and is named by a one-byte model id in the `.sedic` header; loading checks a pinned digest of it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import heapq
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from jaxsemic.errors import UserError
from jaxsemic.sedic import rangecode

END = 256
ALPHABET = 257
MAX_TEXT_BYTES = 1 << 14  # per stream (texts at the largest word limits are a few KB); decoders stop there
MAX_STRINGS = 1024
_TOT = rangecode.row_total(ALPHABET)
_NEWLINE = 0x0A

# model id -> (package file, first 16 hex digits of its content digest)
MODELS = {1: ("text_prior_coco.npz", "f8895dd85b7302ab")}
DEFAULT_MODEL = 1


@dataclasses.dataclass(frozen=True)
class TextModel:
  """A static prior (counts per context and order) and the model's integer parameters."""

  id: int
  order: int
  # per order: context -> (symbols, counts)
  tables: tuple[dict[bytes, tuple[np.ndarray, np.ndarray]], ...] = dataclasses.field(repr=False)
  escape: tuple[int, int] = (1, 1)  # e = num / den
  increment: int = 1
  digest: str = ""

  @staticmethod
  def empty(order: int = 4, escape: tuple[int, int] = (1, 1), increment: int = 1) -> "TextModel":
    """A model without prior (purely adaptive); id 0, never written to a file."""
    return TextModel(0, order, tuple({} for _ in range(order + 1)), escape, increment, "")

  @staticmethod
  def load(model_id: int = DEFAULT_MODEL) -> "TextModel":
    """The shipped model with this id; UserError if unknown or if the package data does not match its digest."""
    return _load(model_id)


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
  """SHA-256 over names, dtypes, shapes and bytes of the arrays (sorted by name), hex."""
  h = hashlib.sha256()
  for k in sorted(arrays):
    a = np.ascontiguousarray(arrays[k])
    h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def model_from_arrays(model_id: int, arrays: dict[str, np.ndarray]) -> TextModel:
  """Builds a TextModel from the npz layout written by `tools/train_text_prior.py`.

  Layout: `params` = [order, escape_num, escape_den, increment]; for each order k, `ctx{k}` uint8 [m, k] contexts,
  `off{k}` int64 [m + 1] offsets into `sym{k}` uint16 and `cnt{k}` uint32 (the nonzero counts of each context).
  """
  order, e_num, e_den, inc = (int(v) for v in arrays["params"])
  tables = []
  for k in range(order + 1):
    ctx, off, sym, cnt = (arrays[f"{n}{k}"] for n in ("ctx", "off", "sym", "cnt"))
    sym, cnt = sym.astype(np.int64), cnt.astype(np.int64)
    tables.append({bytes(ctx[i]): (sym[off[i]:off[i + 1]], cnt[off[i]:off[i + 1]]) for i in range(len(ctx))})
  return TextModel(model_id, order, tuple(tables), (e_num, e_den), inc, arrays_digest(arrays))


def model_arrays(tables: list[dict[bytes, Counter]], escape: tuple[int, int], increment: int) -> dict[str, np.ndarray]:
  """The npz layout of `model_from_arrays` for per-order {context: Counter(symbol -> count)} tables."""
  out = {"params": np.array([len(tables) - 1, escape[0], escape[1], increment], np.int64)}
  for k, table in enumerate(tables):
    keys = sorted(table)
    out[f"ctx{k}"] = np.frombuffer(b"".join(keys), np.uint8).reshape(len(keys), k)
    syms = [sorted(table[c].items()) for c in keys]
    out[f"off{k}"] = np.cumsum([0] + [len(s) for s in syms]).astype(np.int64)
    out[f"sym{k}"] = np.array([s for row in syms for s, _ in row], np.uint16)
    out[f"cnt{k}"] = np.array([n for row in syms for _, n in row], np.uint32)
  return out


@functools.lru_cache(maxsize=None)
def _load(model_id: int) -> TextModel:
  if model_id not in MODELS:
    raise UserError(f"text model id {model_id} is unknown to this jaxsemic (known: {sorted(MODELS)})")
  name, pinned = MODELS[model_id]
  path = Path(__file__).with_name(name)
  if not path.is_file():
    raise UserError(f"text model {model_id} ({name}) is missing from the installed package")
  with np.load(path) as z:
    arrays = {k: z[k] for k in z.files}
  model = model_from_arrays(model_id, arrays)
  if pinned is not None and not model.digest.startswith(pinned):
    raise UserError(f"text model {model_id} ({name}) does not match its pinned digest; reinstall jaxsemic")
  return model


def _uniform() -> np.ndarray:
  q = np.full(ALPHABET, _TOT // ALPHABET, np.int64)
  q[:_TOT % ALPHABET] += 1
  return q


_UNIFORM = _uniform()


class State:
  """Adaptive counts and the byte history of one stream."""

  def __init__(self, model: TextModel):
    self.model = model
    self.seen: list[dict[bytes, dict[int, int]]] = [{} for _ in range(model.order + 1)]
    self.history = b""

  def _counts(self, k: int, ctx: bytes) -> np.ndarray | None:
    prior = self.model.tables[k].get(ctx)
    seen = self.seen[k].get(ctx)
    if prior is None and seen is None:
      return None
    c = np.zeros(ALPHABET, np.int64)
    if prior is not None:
      c[prior[0]] = prior[1]
    if seen:
      idx = np.fromiter(seen.keys(), np.int64, len(seen))
      c[idx] += self.model.increment * np.fromiter(seen.values(), np.int64, len(seen))
    return c

  def row(self) -> np.ndarray:
    """Integer weights (sum 2**24 − 257) for the next symbol."""
    e_num, e_den = self.model.escape
    q = _UNIFORM
    for k in range(min(self.model.order, len(self.history)) + 1):
      c = self._counts(k, self.history[len(self.history) - k:])
      if c is None:
        continue
      seen = c > 0
      n, u = int(c.sum()), int(seen.sum())
      rest = int(q[~seen].sum())
      esc = u * e_num if rest else 0
      new = np.where(seen, c * (e_den * _TOT), (esc * ((q * _TOT) // max(rest, 1))) * ~seen)
      q = new // (n * e_den + esc)
      q[int(np.argmax(q))] += _TOT - int(q.sum())
    return q

  def update(self, symbol: int) -> None:
    for k in range(min(self.model.order, len(self.history)) + 1):
      d = self.seen[k].setdefault(self.history[len(self.history) - k:], {})
      d[symbol] = d.get(symbol, 0) + 1
    byte = _NEWLINE if symbol == END else symbol
    self.history = (self.history + bytes([byte]))[-self.model.order:] if self.model.order else b""


def _symbols(items: list[bytes]) -> list[int]:
  out = []
  for b in items:
    out += list(b) + [END]
  return out


def _utf8(strings: list[str]) -> list[bytes]:
  if not isinstance(strings, (list, tuple)) or not all(isinstance(s, str) for s in strings):
    raise UserError("texts must be a list of strings")
  try:
    return [s.encode("utf-8") for s in strings]
  except UnicodeEncodeError as e:
    raise UserError(f"a text is not valid Unicode ({e.reason})") from e


def model_rows(symbols: list[int], model: TextModel) -> np.ndarray:
  """The weight row used for each symbol of a stream, [len(symbols), 257]."""
  state = State(model)
  rows = np.zeros((len(symbols), ALPHABET), np.int64)
  for i, s in enumerate(symbols):
    rows[i] = state.row()
    state.update(s)
  return rows


def encode_bytes(items: list[bytes], model: TextModel) -> bytes:
  """One range-coded stream for byte strings (each ended by the end symbol); any byte values."""
  if len(items) > MAX_STRINGS:
    raise UserError(f"too many texts ({len(items)} > {MAX_STRINGS})")
  size = sum(len(b) for b in items)
  if size > MAX_TEXT_BYTES:
    raise UserError(f"texts are too long ({size} bytes > {MAX_TEXT_BYTES})")
  symbols = _symbols([bytes(b) for b in items])
  return rangecode.encode_rows(np.array(symbols, np.int32), model_rows(symbols, model))


def decode_bytes(data: bytes, n: int, model: TextModel, max_bytes: int = MAX_TEXT_BYTES) -> list[bytes]:
  """Inverse of `encode_bytes`; UserError if the stream is corrupt, truncated or decodes to > max_bytes."""
  if not isinstance(n, int) or not 0 <= n <= MAX_STRINGS:
    raise UserError(f"number of texts must be in 0..{MAX_STRINGS}, got {n!r}")
  state = State(model)
  decoder = rangecode.new_decoder(data)
  items: list[bytes] = []
  current = bytearray()
  total = 0
  while len(items) < n:
    s = rangecode.decode_one(decoder, state.row(), "text")
    state.update(s)
    if s == END:
      items.append(bytes(current))
      current = bytearray()
      continue
    current.append(s)
    total += 1
    if total > max_bytes:
      raise UserError(f"text stream is corrupt (decodes to more than {max_bytes} bytes)")
  if encode_bytes(items, model) != bytes(data):
    raise UserError("text stream is corrupt or truncated (it is not the encoding of what it decodes to)")
  return items


def encode_texts(strings: list[str], model: TextModel) -> bytes:
  """One range-coded stream for all `strings`, as UTF-8 (each ended by the end symbol)."""
  return encode_bytes(_utf8(strings), model)


def decode_texts(data: bytes, n: int, model: TextModel, max_bytes: int = MAX_TEXT_BYTES) -> list[str]:
  """Inverse of `encode_texts`; UserError if the stream is corrupt or truncated (never more than max_bytes)."""
  try:
    return [b.decode("utf-8") for b in decode_bytes(data, n, model, max_bytes)]
  except UnicodeDecodeError as e:
    raise UserError("text stream is corrupt (decoded text is not UTF-8)") from e


def text_symbols(strings: list[str]) -> list[int]:
  """The symbols `encode_texts` codes: each string's UTF-8 bytes, then END."""
  return _symbols(_utf8(strings))


def text_bits(strings: list[str], model: TextModel) -> float:
  """Ideal code length of `encode_texts(strings, model)` in bits (before the coder's flush)."""
  symbols = text_symbols(strings)
  return rangecode.ideal_bits(np.array(symbols), model_rows(symbols, model))


# ---- baselines ---------------------------------------------------------------------------------------------


def huffman_lengths(counts: dict[int, int]) -> dict[int, int]:
  """Optimal (Huffman) code lengths; a single symbol gets length 1."""
  if len(counts) == 1:
    return {next(iter(counts)): 1}
  heap = [(c, i, (s,)) for i, (s, c) in enumerate(sorted(counts.items()))]
  heapq.heapify(heap)
  depth = Counter()
  tie = len(heap)
  while len(heap) > 1:
    c1, _, a = heapq.heappop(heap)
    c2, _, b = heapq.heappop(heap)
    for s in a + b:
      depth[s] += 1
    heapq.heappush(heap, (c1 + c2, tie, a + b))
    tie += 1
  return dict(depth)


def _gamma_bits(v: int) -> int:
  """Elias-gamma code length of v ≥ 1."""
  return 2 * (v.bit_length() - 1) + 1


def huffman_table_bits(lengths: dict[int, int]) -> int:
  """Cost of sending a canonical Huffman code: symbol count (9 bits), then per used symbol in increasing order
  its gap to the previous one (Elias gamma) and its code length (5 bits)."""
  bits, prev = 9, -1
  for s in sorted(lengths):
    bits += _gamma_bits(s - prev) + 5
    prev = s
  return bits


def _huffman_message_bits(symbols: list[int]) -> int:
  counts = Counter(symbols)
  if not counts:
    return 0
  lengths = huffman_lengths(counts)
  return sum(counts[s] * lengths[s] for s in counts) + huffman_table_bits(lengths)


def huffman_bits(strings: list[str], per: str = "image") -> int:
  """Bits of optimal byte Huffman codes with their tables: one code for all strings (`per="image"`, strings
  ended by b"\\n") or one per string (`per="string"`, each with its own table, ended by its own b"\\n")."""
  data = [s.encode("utf-8") + b"\n" for s in strings]
  if per == "image":
    return _huffman_message_bits(list(b"".join(data)))
  if per == "string":
    return sum(_huffman_message_bits(list(d)) for d in data)
  raise ValueError(f"per must be 'image' or 'string', got {per!r}")


def zlib_bits(strings: list[str]) -> int:
  """Bits of zlib level 9 (with header and Adler-32) over the strings joined by newlines."""
  return 8 * len(zlib.compress("".join(s + "\n" for s in strings).encode("utf-8"), 9))


def brotli_bits(strings: list[str]) -> int | None:
  """Bits of brotli quality 11, text mode (None when neither `brotli` nor `imagecodecs` is installed)."""
  data = "".join(s + "\n" for s in strings).encode("utf-8")
  try:
    import brotli  # noqa: PLC0415 - optional
    return 8 * len(brotli.compress(data, mode=brotli.MODE_TEXT, quality=11))
  except ImportError:
    pass
  try:
    import imagecodecs  # noqa: PLC0415 - optional
    return 8 * len(imagecodecs.brotli_encode(data, level=11, mode=1))
  except (ImportError, AttributeError):
    return None

