"""BLIP image captioning (Li et al. 2022) in Flax linen, names mirroring HF `BlipForConditionalGeneration`.

SELIC's image-to-text encoder g_a1 (paper 000, Sec. III): a ViT (`vision_model`, pre-LN blocks with a fused
qkv projection) encodes the image; a BERT decoder (`text_decoder.bert`, causal self-attention + cross-attention
to the image tokens, no token-type embeddings) and an LM head tied to the word embeddings predict the caption.
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
from jaxsemic.text import bert, prenorm
from jaxsemic.text.hf_weights import Rule, convert, read_config, read_state_dict, resolve_model_dir
from jaxsemic.text.images import ImageProcessing
from jaxsemic.text.tokenize import Tokenizer, load_tokenizer

# checkpoint key -> Flax path; the LM-head decoder is tied to the word embeddings, so its copy is skipped.
BLIP_RULES: tuple[Rule, ...] = (
    (r"(vision_model\.embeddings\.(?:class|position)_embedding)", r"\1", "id"),  # bare nn.Parameter
    (r"(.*\.patch_embedding)\.weight", r"\1.kernel", "conv"),
    (r"(.*_embeddings)\.weight", r"\1.embedding", "id"),  # BERT word / position nn.Embed
    (r"(.*(?:LayerNorm|layer_norm\d?|layernorm))\.weight", r"\1.scale", "id"),
    (r"(.*)\.weight", r"\1.kernel", "linear"),
    (r"(.*)\.bias", r"\1.bias", "id"),
)
BLIP_IGNORE = (r".*position_ids", r"text_decoder\.cls\.predictions\.decoder\.(weight|bias)")


@dataclasses.dataclass(frozen=True)
class BlipConfig:
  """Vision tower, text decoder and the special token ids of a HF BLIP captioning config."""
  vision: prenorm.BlockConfig
  image_size: int
  patch_size: int
  text: bert.BertConfig
  bos_token_id: int  # [DEC], starts every caption
  sep_token_id: int  # [SEP], ends it
  pad_token_id: int = 0

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "BlipConfig":
    """From config.json of a `BlipForConditionalGeneration` checkpoint."""
    v, t = d.get("vision_config", {}), d.get("text_config", {})
    if not t.get("tie_word_embeddings", d.get("tie_word_embeddings", True)):
      raise UserError("BLIP checkpoints with an untied LM head are not supported")
    vision = prenorm.block_config(v, fused_qkv=True, hidden_act=v.get("hidden_act", "gelu"))
    text = bert.BertConfig.from_dict(t, type_vocab_size=0, add_pooling_layer=False, is_decoder=True,
                                     encoder_hidden_size=vision.hidden_size)
    return cls(vision, v.get("image_size", 384), v.get("patch_size", 16), text,
               t.get("bos_token_id", 30522), t.get("sep_token_id", 102), t.get("pad_token_id", 0))


class VisionEmbeddings(nn.Module):
  """Patchify conv + [CLS] token + learned positions (HF `BlipVisionEmbeddings`)."""
  config: BlipConfig

  @nn.compact
  def __call__(self, pixels: jax.Array) -> jax.Array:
    c, width = self.config, self.config.vision.hidden_size
    p = c.patch_size
    x = nn.Conv(width, (p, p), strides=(p, p), padding="VALID", name="patch_embedding")(pixels)
    x = x.reshape(x.shape[0], -1, width)  # row-major patches, as torch's flatten(2)
    init = nn.initializers.normal(0.02)
    cls_token = self.param("class_embedding", init, (1, 1, width))
    pos = self.param("position_embedding", init, (1, (c.image_size // p) ** 2 + 1, width))
    return jnp.concatenate([jnp.broadcast_to(cls_token, (x.shape[0], 1, width)), x], axis=1) + pos


class VisionModel(nn.Module):
  """ViT: pixels [B,S,S,3] (normalised) -> image tokens [B, 1 + (S/p)^2, D]."""
  config: BlipConfig

  @nn.compact
  def __call__(self, pixels: jax.Array) -> jax.Array:
    c = self.config
    chex.assert_shape(pixels, (None, c.image_size, c.image_size, 3))
    h = VisionEmbeddings(c, name="embeddings")(pixels)
    h, _ = prenorm.Encoder(c.vision, name="encoder")(h, None)
    return nn.LayerNorm(epsilon=c.vision.layer_norm_eps, name="post_layernorm")(h)


class HeadTransform(nn.Module):
  """dense -> activation -> LayerNorm (HF `BlipTextPredictionHeadTransform`)."""
  config: bert.BertConfig

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    c = self.config
    h = bert.ACTIVATIONS[c.hidden_act](nn.Dense(c.hidden_size, name="dense")(h))
    return nn.LayerNorm(epsilon=c.layer_norm_eps, name="LayerNorm")(h)


class Predictions(nn.Module):
  """LM head: transform, then tied word embeddings^T + bias (HF `BlipTextLMPredictionHead`)."""
  config: bert.BertConfig

  @nn.compact
  def __call__(self, h: jax.Array, word_embeddings: jax.Array) -> jax.Array:
    h = HeadTransform(self.config, name="transform")(h)
    return h @ word_embeddings.T + self.param("bias", nn.initializers.zeros, (self.config.vocab_size,))


class LMHead(nn.Module):
  """HF `BlipTextOnlyMLMHead` (`cls.predictions`)."""
  config: bert.BertConfig

  @nn.compact
  def __call__(self, h: jax.Array, word_embeddings: jax.Array) -> jax.Array:
    return Predictions(self.config, name="predictions")(h, word_embeddings)


class TextDecoder(nn.Module):
  """ids [B,T] + image tokens -> next-token logits [B,T,V] (HF `BlipTextLMHeadModel`)."""
  config: bert.BertConfig

  @nn.compact
  def __call__(self, ids: jax.Array, mask: jax.Array | None, image_embeds: jax.Array,
               position: jax.Array | None = None) -> jax.Array:
    body = bert.BertModel(self.config, name="bert")
    h = body(ids, mask, image_embeds)["last_hidden_state"]
    if position is not None:  # generation needs one position only: skip the vocabulary matmul elsewhere
      h = jax.lax.dynamic_slice_in_dim(h, position, 1, axis=1)
    table = body.variables["params"]["embeddings"]["word_embeddings"]["embedding"]
    return LMHead(self.config, name="cls")(h, table)


class BlipForConditionalGeneration(nn.Module):
  """`encode_image(pixels)` and `decode(ids, mask, image_embeds)`; `__call__` runs both (logits [B,T,V])."""
  config: BlipConfig

  def setup(self):
    self.vision_model = VisionModel(self.config)
    self.text_decoder = TextDecoder(self.config.text)

  def encode_image(self, pixels: jax.Array) -> jax.Array:
    """Normalised pixels [B,S,S,3] -> image tokens [B,N,D]."""
    return self.vision_model(pixels)

  def decode(self, ids: jax.Array, mask: jax.Array | None, image_embeds: jax.Array,
             position: jax.Array | None = None) -> jax.Array:
    """Caption ids [B,T] -> logits [B,T,V] for the token after each position ([B,1,V] at `position`)."""
    return self.text_decoder(ids, mask, image_embeds, position)

  def __call__(self, pixels: jax.Array, ids: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    return self.decode(ids, mask, self.encode_image(pixels))


def load_blip(path: str | Path) -> tuple[BlipForConditionalGeneration, Any, Tokenizer, ImageProcessing]:
  """Loads a HF BLIP captioning directory -> (module, params, tokenizer, image preprocessing)."""
  model_dir = resolve_model_dir(path)
  raw = read_config(model_dir)
  if raw.get("model_type") != "blip":
    raise UserError(f"{model_dir} holds a {raw.get('model_type')!r} model; expected BLIP (model_type blip)")
  config = BlipConfig.from_dict(raw)
  module = BlipForConditionalGeneration(config)
  pixels = jax.ShapeDtypeStruct((1, config.image_size, config.image_size, 3), jnp.float32)
  ids = jax.ShapeDtypeStruct((1, 4), jnp.int32)
  abstract = jax.eval_shape(lambda p, i: module.init(jax.random.key(0), p, i), pixels, ids)["params"]
  params = convert(read_state_dict(model_dir), BLIP_RULES, abstract, BLIP_IGNORE)
  processing = ImageProcessing.from_dir(model_dir, config.image_size)
  tokenizer = load_tokenizer(model_dir, config.text.max_position_embeddings, config.pad_token_id)
  return module, params, tokenizer, processing
