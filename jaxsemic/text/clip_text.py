"""CLIP text transformer (Radford et al. 2021) in Flax linen, names mirroring HF `CLIPTextModel`.

Used by the SEDIC decoder (paper 003) for Stable-Diffusion text conditioning: `last_hidden_state` (after the
final LayerNorm) is the cross-attention context, `pooler_output` the state at the end-of-text token, and
`text_embeds` its projection when the checkpoint has `text_projection` (CLIPTextModelWithProjection).
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
from jaxsemic.text import prenorm
from jaxsemic.text.attention import padding_mask
from jaxsemic.text.hf_weights import Rule, convert, read_config, read_state_dict, resolve_model_dir
from jaxsemic.text.tokenize import Tokenizer, load_tokenizer

# checkpoint key (a CLIPTextModel, CLIPTextModelWithProjection or full CLIPModel) -> Flax path.
CLIP_TEXT_RULES: tuple[Rule, ...] = (
    (r"(?:text_model\.)?(.*_embedding)\.weight", r"\1.embedding", "id"),  # token / position nn.Embed
    (r"(?:text_model\.)?(.*(?:layer_norm\d?))\.weight", r"\1.scale", "id"),  # layer_norm1/2, final_layer_norm
    (r"(?:text_model\.)?(.*)\.weight", r"\1.kernel", "linear"),
    (r"(?:text_model\.)?(.*)\.bias", r"\1.bias", "id"),
)
CLIP_TEXT_IGNORE = (r".*position_ids", r"vision_model\..*", r"visual_projection\..*", r"logit_scale")


@dataclasses.dataclass(frozen=True)
class CLIPTextConfig:
  """The fields of a HF CLIP text config the port uses."""
  blocks: prenorm.BlockConfig
  vocab_size: int
  max_position_embeddings: int = 77
  eos_token_id: int = 2
  projection_dim: int = 0  # 0 = no text_projection

  @classmethod
  def from_dict(cls, d: dict[str, Any], projection_dim: int = 0) -> "CLIPTextConfig":
    """From config.json of a CLIPTextModel (or the `text_config` of a CLIPModel)."""
    d = d.get("text_config", d)
    return cls(prenorm.block_config(d), d["vocab_size"], d.get("max_position_embeddings", 77),
               d.get("eos_token_id", 2), projection_dim)


class TextEmbeddings(nn.Module):
  """Token + absolute position embeddings (HF `CLIPTextEmbeddings`)."""
  config: CLIPTextConfig

  @nn.compact
  def __call__(self, input_ids: jax.Array) -> jax.Array:
    c, width = self.config, self.config.blocks.hidden_size
    positions = jnp.arange(input_ids.shape[1])[None]
    return (nn.Embed(c.vocab_size, width, name="token_embedding")(input_ids)
            + nn.Embed(c.max_position_embeddings, width, name="position_embedding")(positions))


class CLIPTextModel(nn.Module):
  """ids [B,T] (+ mask) -> {'last_hidden_state' [B,T,H], 'pooler_output' [B,H], ['text_embeds', 'hidden_states']}."""
  config: CLIPTextConfig

  @nn.compact
  def __call__(self, input_ids: jax.Array, attention_mask: jax.Array | None = None,
               output_hidden_states: bool = False) -> dict[str, Any]:
    c = self.config
    chex.assert_rank(input_ids, 2)
    b, t = input_ids.shape
    h = TextEmbeddings(c, name="embeddings")(input_ids)
    keep = jnp.ones((b, t), bool) if attention_mask is None else attention_mask
    h, states = prenorm.Encoder(c.blocks, name="encoder")(h, padding_mask(keep, t, causal=True))
    last = nn.LayerNorm(epsilon=c.blocks.layer_norm_eps, name="final_layer_norm")(h)
    # Legacy configs (eos_token_id == 2) take the largest id, as HF does; others the first eos token.
    eos = jnp.argmax(input_ids, -1) if c.eos_token_id == 2 else jnp.argmax(input_ids == c.eos_token_id, -1)
    pooled = last[jnp.arange(b), eos]
    out = {"last_hidden_state": last, "pooler_output": pooled}
    if c.projection_dim:
      out["text_embeds"] = nn.Dense(c.projection_dim, use_bias=False, name="text_projection")(pooled)
    if output_hidden_states:
      out["hidden_states"] = states
    return out


def load_clip_text(path: str | Path) -> tuple[CLIPTextModel, Any, Tokenizer]:
  """Loads a HF CLIP text directory (e.g. a Stable Diffusion `text_encoder/`) -> (module, params, tokenizer).

  The tokenizer is read from `path`, or from a sibling `../tokenizer/` as in diffusers pipelines.
  """
  model_dir = resolve_model_dir(path)
  raw = read_config(model_dir)
  if raw.get("model_type") not in ("clip_text_model", "clip", None):
    raise UserError(f"{model_dir} holds a {raw.get('model_type')!r} model; expected a CLIP text model")
  state = read_state_dict(model_dir)
  proj = state.get("text_projection.weight")
  config = CLIPTextConfig.from_dict(raw, projection_dim=0 if proj is None else proj.shape[0])
  module = CLIPTextModel(config)
  ids = jax.ShapeDtypeStruct((1, 4), jnp.int32)
  abstract = jax.eval_shape(lambda i: module.init(jax.random.key(0), i), ids)["params"]
  params = convert(state, CLIP_TEXT_RULES, abstract, CLIP_TEXT_IGNORE)
  tok_dir = next((d for d in (model_dir, model_dir.parent / "tokenizer")
                  if (d / "tokenizer.json").is_file() or (d / "vocab.json").is_file()), None)
  if tok_dir is None:
    raise UserError(f"no CLIP tokenizer (tokenizer.json) in {model_dir} or {model_dir.parent / 'tokenizer'}")
  return module, params, load_tokenizer(tok_dir, config.max_position_embeddings)
