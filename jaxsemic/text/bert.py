"""BERT encoder (Devlin et al. 2019) in Flax linen, with names mirroring Hugging Face `BertModel`.

SELIC's text-to-tensor encoder g_a2 (paper 000, Sec. III). The same blocks, with a causal mask and
cross-attention switched on, form BLIP's text decoder (`jaxsemic.text.blip`). Post-LayerNorm residual
blocks: x = LN(x + Attn(x)); [x = LN(x + CrossAttn(x, enc))]; x = LN(x + W2 act(W1 x)).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsemic.errors import UserError
from jaxsemic.text.attention import dot_product_attention, padding_mask
from jaxsemic.text.hf_weights import Rule, convert, read_config, read_state_dict, strip_prefix

ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "relu": jax.nn.relu,
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """The fields of a Hugging Face BERT `config.json` the port uses."""
  vocab_size: int
  hidden_size: int
  num_hidden_layers: int
  num_attention_heads: int
  intermediate_size: int
  hidden_act: str = "gelu"
  max_position_embeddings: int = 512
  type_vocab_size: int = 2  # 0 = no token-type embeddings (BLIP text).
  layer_norm_eps: float = 1e-12
  pad_token_id: int = 0
  add_pooling_layer: bool = True
  is_decoder: bool = False  # causal self-attention (BLIP text decoder).
  encoder_hidden_size: int = 0  # > 0 adds cross-attention to every layer.

  @classmethod
  def from_dict(cls, d: dict[str, Any], **overrides) -> "BertConfig":
    """Builds from a config.json dict, ignoring the keys the port does not need."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{**{k: v for k, v in d.items() if k in names}, **overrides})


# checkpoint key (layer numbers already as `layer_3`) -> Flax path. The first matching rule wins.
BERT_RULES: tuple[Rule, ...] = (
    (r"(.*_embeddings)\.weight", r"\1.embedding", "id"),  # nn.Embed
    (r"(.*\.LayerNorm)\.(weight|gamma)", r"\1.scale", "id"),
    (r"(.*\.LayerNorm)\.(bias|beta)", r"\1.bias", "id"),
    (r"(.*)\.weight", r"\1.kernel", "linear"),  # every other weight is a Linear
    (r"(.*)\.bias", r"\1.bias", "id"),
)
BERT_IGNORE = (r".*position_ids", r".*token_type_ids", r"cls\..*")


class SelfOutput(nn.Module):
  """Dense + dropout-free residual + LayerNorm (HF `BertSelfOutput` / `BertOutput`)."""
  config: BertConfig

  @nn.compact
  def __call__(self, h: jax.Array, residual: jax.Array) -> jax.Array:
    h = nn.Dense(self.config.hidden_size, name="dense")(h)
    return nn.LayerNorm(epsilon=self.config.layer_norm_eps, name="LayerNorm")(h + residual)


class MultiHeadAttention(nn.Module):
  """HF `BertSelfAttention`: `query/key/value` Dense layers; mask [B,Q,K] True = may attend."""
  config: BertConfig

  @nn.compact
  def __call__(self, x: jax.Array, context: jax.Array, mask: jax.Array) -> jax.Array:
    c = self.config
    q = nn.Dense(c.hidden_size, name="query")(x)
    k = nn.Dense(c.hidden_size, name="key")(context)
    v = nn.Dense(c.hidden_size, name="value")(context)
    return dot_product_attention(q, k, v, mask, c.num_attention_heads)


class Attention(nn.Module):
  """HF `BertAttention`: `self` (q/k/v) then `output` (dense + residual LayerNorm)."""
  config: BertConfig

  @nn.compact
  def __call__(self, x: jax.Array, context: jax.Array, mask: jax.Array) -> jax.Array:
    h = MultiHeadAttention(self.config, name="self")(x, context, mask)
    return SelfOutput(self.config, name="output")(h, x)


class Intermediate(nn.Module):
  """HF `BertIntermediate`: dense + activation."""
  config: BertConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return ACTIVATIONS[self.config.hidden_act](nn.Dense(self.config.intermediate_size, name="dense")(x))


class Layer(nn.Module):
  """One post-LN transformer block, with cross-attention when `encoder_hidden_size > 0`."""
  config: BertConfig

  @nn.compact
  def __call__(self, x, mask, encoder_states=None, encoder_mask=None):
    x = Attention(self.config, name="attention")(x, x, mask)
    if self.config.encoder_hidden_size:
      x = Attention(self.config, name="crossattention")(x, encoder_states, encoder_mask)
    return SelfOutput(self.config, name="output")(Intermediate(self.config, name="intermediate")(x), x)


class Embeddings(nn.Module):
  """Word + position (+ token-type) embeddings, then LayerNorm."""
  config: BertConfig

  @nn.compact
  def __call__(self, input_ids: jax.Array) -> jax.Array:
    c = self.config
    positions = jnp.arange(input_ids.shape[1])[None]
    h = nn.Embed(c.vocab_size, c.hidden_size, name="word_embeddings")(input_ids)
    if c.type_vocab_size:
      # Single-segment inputs: token type 0 everywhere (the HF default when token_type_ids is None).
      h = h + nn.Embed(c.type_vocab_size, c.hidden_size, name="token_type_embeddings")(
          jnp.zeros_like(input_ids))
    h = h + nn.Embed(c.max_position_embeddings, c.hidden_size, name="position_embeddings")(positions)
    return nn.LayerNorm(epsilon=c.layer_norm_eps, name="LayerNorm")(h)


class Encoder(nn.Module):
  """The stack of `num_hidden_layers` blocks (`encoder.layer_i`)."""
  config: BertConfig

  @nn.compact
  def __call__(self, h, mask, encoder_states=None, encoder_mask=None):
    for i in range(self.config.num_hidden_layers):
      h = Layer(self.config, name=f"layer_{i}")(h, mask, encoder_states, encoder_mask)
    return h


class BertModel(nn.Module):
  """HF `BertModel`: returns {'last_hidden_state': [B,T,H], 'pooler_output': [B,H] (if pooling layer)}."""
  config: BertConfig

  @nn.compact
  def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None,
               encoder_states: jax.Array | None = None, encoder_mask: jax.Array | None = None):
    c = self.config
    chex.assert_rank(input_ids, 2)
    b, t = input_ids.shape
    keep = jnp.ones((b, t), bool) if attention_mask is None else attention_mask
    mask = padding_mask(keep, t, causal=c.is_decoder)  # [B, query, key]
    if encoder_states is not None:
      chex.assert_rank(encoder_states, 3)
      enc_keep = jnp.ones(encoder_states.shape[:2], bool) if encoder_mask is None else encoder_mask
      encoder_mask = padding_mask(enc_keep, t)
    h = Embeddings(c, name="embeddings")(input_ids)
    h = Encoder(c, name="encoder")(h, mask, encoder_states, encoder_mask)
    out = {"last_hidden_state": h}
    if c.add_pooling_layer:
      out["pooler_output"] = Pooler(c, name="pooler")(h)
    return out


class Pooler(nn.Module):
  """HF `BertPooler`: tanh(dense(h[:, 0]))."""
  config: BertConfig

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    return jnp.tanh(nn.Dense(self.config.hidden_size, name="dense")(h[:, 0]))


def mean_pool(hidden: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean over non-padding tokens (sentence-transformers `pooling_mode_mean_tokens`)."""
  m = mask.astype(hidden.dtype)[..., None]
  return (hidden * m).sum(1) / jnp.maximum(m.sum(1), 1e-9)


def l2_normalize(v: jax.Array) -> jax.Array:
  """v / max(||v||, 1e-12), as torch.nn.functional.normalize (sentence-transformers `Normalize`)."""
  return v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def abstract_params(module: BertModel, seq_len: int = 8) -> Any:
  """Parameter shapes of a BERT encoder from `jax.eval_shape` (no compute, no memory)."""
  ids = jax.ShapeDtypeStruct((1, seq_len), jnp.int32)
  return jax.eval_shape(lambda i: module.init(jax.random.key(0), i), ids)["params"]


def load_bert(model_dir: Path) -> tuple[BertModel, Any]:
  """Loads a Hugging Face BERT directory (BertModel or BertFor* checkpoints) as (module, params)."""
  raw = read_config(model_dir)
  if raw.get("model_type", "bert") != "bert":
    raise UserError(f"{model_dir} holds a {raw.get('model_type')!r} model; expected a BERT (model_type bert)")
  state = read_state_dict(model_dir)
  if any(k.startswith("bert.") for k in state):
    state = strip_prefix(state, "bert.")
  config = BertConfig.from_dict(raw, add_pooling_layer=any(k.startswith("pooler.") for k in state))
  module = BertModel(config)
  return module, convert(state, BERT_RULES, abstract_params(module), BERT_IGNORE)
