"""Tokenizers from a Hugging Face directory (via `tokenizers`, no transformers at run time), padded to buckets.

Sequences are padded to the next power of two (at least `MIN_LENGTH`, at most the model's maximum) so a
jitted model compiles once per bucket, not once per batch.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tokenizers
import tokenizers.decoders
import tokenizers.models
import tokenizers.normalizers
import tokenizers.pre_tokenizers
import tokenizers.processors

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
    text = self.tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
    suffix = getattr(self.tok.model, "end_of_word_suffix", None)  # CLIP BPE marks word ends with </w>
    return text.replace(suffix, " ").strip() if suffix else text

  def _encode_full(self, text: str) -> tokenizers.Encoding:
    """One text, special tokens added, without truncation (to measure and to find phrases)."""
    params = self.tok.truncation
    self.tok.no_truncation()
    try:
      return self.tok.encode(text)
    finally:
      if params:
        self.tok.enable_truncation(**params)

  def num_tokens(self, text: str) -> int:
    """Tokens of `text` with the special tokens, before any truncation."""
    return len(self._encode_full(text).ids)

  def check_length(self, text: str, length: int | None = None, what: str = "text") -> bool:
    """Warn (and return False) when `text` has more tokens than `length` (default: the model's maximum).

    CLIP's text encoder sees 77 positions; longer texts are silently cut by `encode`, so callers that
    send whole descriptions check them first.
    """
    length = length or self.max_length
    n = self.num_tokens(text)
    if n > length:
      warnings.warn(f"{what} has {n} tokens; only the first {length} (with start/end tokens) are used",
                    stacklevel=2)
      return False
    return True

  def phrase_indices(self, prompt: str, phrase: str, length: int | None = None) -> list[int]:
    """Positions (in `encode([prompt], length)` ids, start token = 0) of the tokens spelling `phrase`.

    The phrase is found as whole words, case-insensitively, its first occurrence; tokens are matched through
    the tokenizer's character offsets. UserError if it is absent or cut off by the `length` limit.
    """
    length = length or self.max_length
    words = [re.escape(w) for w in phrase.split()]
    found = re.search(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", prompt, re.IGNORECASE) if words else None
    if found is None:
      raise UserError(f"phrase {phrase!r} is not in the prompt {prompt!r}")
    enc = self._encode_full(prompt)
    start, end = found.span()
    hits = [i for i, ((a, b), special) in enumerate(zip(enc.offsets, enc.special_tokens_mask))
            if not special and a < end and b > start]
    if not hits:
      raise UserError(f"phrase {phrase!r} has no tokens in the prompt {prompt!r}")
    if hits[-1] > length - 2:  # the last kept position holds the end token
      raise UserError(f"phrase {phrase!r} lies beyond the {length}-token limit of the prompt")
    return hits

  def token_id(self, token: str) -> int:
    """Id of a special token such as '[SEP]'; UserError if the vocabulary lacks it."""
    i = self.tok.token_to_id(token)
    if i is None:
      raise UserError(f"tokenizer has no token {token!r}")
    return i


def _special(cfg: dict, name: str, default: str | None = None) -> str | None:
  """A special token from tokenizer_config.json / special_tokens_map.json (string or {"content": ...})."""
  v = cfg.get(name, default)
  return v.get("content") if isinstance(v, dict) else v


def clip_bpe_tokenizer(vocab: Path, merges: Path, cfg: dict) -> tokenizers.Tokenizer:
  """CLIP's byte-level BPE from vocab.json + merges.txt (as HF `CLIPTokenizer` builds it)."""
  return clip_bpe_from_vocab(*tokenizers.models.BPE.read_file(str(vocab), str(merges)), cfg)


def clip_bpe_from_vocab(vocab: dict[str, int], merges: list[tuple[str, str]], cfg: dict | None = None
                        ) -> tokenizers.Tokenizer:
  """CLIP's byte-level BPE from an in-memory vocabulary and merge list (files or a tiny test vocabulary)."""
  cfg = cfg or {}
  unk = _special(cfg, "unk_token", "<|endoftext|>")
  bos, eos = _special(cfg, "bos_token", "<|startoftext|>"), _special(cfg, "eos_token", "<|endoftext|>")
  tok = tokenizers.Tokenizer(tokenizers.models.BPE(
      vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="</w>", fuse_unk=False,
      unk_token=unk))
  tok.normalizer = tokenizers.normalizers.Sequence([
      tokenizers.normalizers.NFC(), tokenizers.normalizers.Replace(tokenizers.Regex(r"\s+"), " "),
      tokenizers.normalizers.Lowercase()])
  words = (r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]"""
           r"""|[^\s\p{L}\p{N}]+""")
  tok.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
      tokenizers.pre_tokenizers.Split(tokenizers.Regex(words), behavior="removed", invert=True),
      tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)])
  tok.decoder = tokenizers.decoders.ByteLevel()
  tok.add_special_tokens([t for t in {unk, bos, eos, _special(cfg, "pad_token")} if t])
  tok.post_processor = tokenizers.processors.RobertaProcessing(
      (eos, tok.token_to_id(eos)), (bos, tok.token_to_id(bos)), trim_offsets=False, add_prefix_space=False)
  return tok


def _read_json(path: Path) -> dict:
  return json.loads(path.read_text()) if path.is_file() else {}


def load_tokenizer(model_dir: Path, max_length: int, pad_id: int | None = None) -> Tokenizer:
  """Reads tokenizer.json, a BERT vocab.txt or a CLIP vocab.json + merges.txt from a HF model directory."""
  model_dir = Path(model_dir)
  cfg = _read_json(model_dir / "special_tokens_map.json") | _read_json(model_dir / "tokenizer_config.json")
  tok_json, vocab = model_dir / "tokenizer.json", model_dir / "vocab.txt"
  try:
    if tok_json.is_file():
      tok = tokenizers.Tokenizer.from_file(str(tok_json))
    elif vocab.is_file():
      tok = tokenizers.BertWordPieceTokenizer(str(vocab), lowercase=cfg.get("do_lower_case", True))._tokenizer
    elif (model_dir / "vocab.json").is_file() and (model_dir / "merges.txt").is_file():
      tok = clip_bpe_tokenizer(model_dir / "vocab.json", model_dir / "merges.txt", cfg)
    else:
      raise UserError(f"{model_dir} has no tokenizer.json, vocab.txt or vocab.json + merges.txt")
  except UserError:
    raise
  except Exception as e:  # noqa: BLE001 - tokenizers raises bare Exceptions on bad files.
    raise UserError(f"cannot read the tokenizer in {model_dir}: {e}") from e
  if pad_id is None:
    names = (_special(cfg, "pad_token"), "[PAD]", "<pad>", "<|endoftext|>")
    pad_id = next((i for t in names if t and (i := tok.token_to_id(t)) is not None), 0)
  return Tokenizer(tok, max_length, pad_id)
