"""Tokenizers from a Hugging Face directory (via `tokenizers`, no transformers at run time), padded to buckets.

Sequences are padded to the next power of two (at least `MIN_LENGTH`, at most the model's maximum) so a
jitted model compiles once per bucket, not once per batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tokenizers

from jaxsemic.errors import UserError

MIN_LENGTH = 16


def bucket(n: int, lo: int, hi: int) -> int:
  """Smallest power of two >= n, clipped to [lo, hi]."""
  return int(min(hi, max(lo, 1 << max(0, n - 1).bit_length())))


class Tokenizer:
  """Batch tokenizer returning fixed-bucket int32 `ids` and `mask` arrays [B, L]."""

  def __init__(self, tok: tokenizers.Tokenizer, max_length: int, pad_id: int):
    self.tok, self.max_length, self.pad_id = tok, max_length, pad_id
    tok.no_padding()
    tok.enable_truncation(max_length)  # keeps room for the special tokens the post-processor adds.

  def encode(self, texts: Sequence[str], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tokenizes `texts`; pads to `length` or to the bucket of the longest sequence."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
      raise UserError("texts must be a list of strings")
    encs = self.tok.encode_batch(list(texts))
    longest = max((len(e.ids) for e in encs), default=1)
    length = length or bucket(longest, MIN_LENGTH, self.max_length)
    ids = np.full((len(encs), length), self.pad_id, np.int32)
    mask = np.zeros((len(encs), length), np.int32)
    for i, e in enumerate(encs):
      n = min(len(e.ids), length)
      ids[i, :n], mask[i, :n] = e.ids[:n], 1
    return ids, mask

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    """Token ids -> text."""
    return self.tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

  def token_id(self, token: str) -> int:
    """Id of a special token such as '[SEP]'; UserError if the vocabulary lacks it."""
    i = self.tok.token_to_id(token)
    if i is None:
      raise UserError(f"tokenizer has no token {token!r}")
    return i


def load_tokenizer(model_dir: Path, max_length: int, pad_id: int | None = None) -> Tokenizer:
  """Reads tokenizer.json (or a BERT vocab.txt) from a Hugging Face model directory."""
  model_dir = Path(model_dir)
  tok_json, vocab = model_dir / "tokenizer.json", model_dir / "vocab.txt"
  if tok_json.is_file():
    try:
      tok = tokenizers.Tokenizer.from_file(str(tok_json))
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception on bad files.
      raise UserError(f"cannot read tokenizer {tok_json}: {e}") from e
  elif vocab.is_file():
    cfg_path = model_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    tok = tokenizers.BertWordPieceTokenizer(str(vocab), lowercase=cfg.get("do_lower_case", True))._tokenizer
  else:
    raise UserError(f"{model_dir} has no tokenizer.json or vocab.txt")
  if pad_id is None:
    pad_id = next((i for t in ("[PAD]", "<pad>", "<|endoftext|>") if (i := tok.token_to_id(t)) is not None), 0)
  return Tokenizer(tok, max_length, pad_id)
