"""CLIP vision tower in Flax linen (HF `CLIPVisionModel(WithProjection)` names) and a CLIP-score helper.

Shares the pre-LN blocks with the CLIP text port. `clip_score` is the usual image-text metric:
100 * max(cos(image_embeds, text_embeds), 0) (Hessel et al. 2021, as torchmetrics' CLIPScore).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.errors import UserError
from jaxsemic.text import clip_text, prenorm
from jaxsemic.text.hf_weights import Rule, convert, read_config, read_state_dict, resolve_model_dir
from jaxsemic.text.images import ImageProcessing

CLIP_VISION_RULES: tuple[Rule, ...] = (
    (r"(?:vision_model\.)?(embeddings\.class_embedding)", r"\1", "id"),  # bare nn.Parameter
    (r"(?:vision_model\.)?(embeddings\.patch_embedding)\.weight", r"\1.kernel", "conv"),
    (r"(?:vision_model\.)?(embeddings\.position_embedding)\.weight", r"\1.embedding", "id"),
    (r"(?:vision_model\.)?(.*(?:layer_norm\d?|layrnorm|layernorm))\.weight", r"\1.scale", "id"),
    (r"(?:vision_model\.)?(.*)\.weight", r"\1.kernel", "linear"),
    (r"(?:vision_model\.)?(.*)\.bias", r"\1.bias", "id"),
)
CLIP_VISION_IGNORE = (r".*position_ids", r"text_model\..*", r"text_projection\..*", r"logit_scale")


@dataclasses.dataclass(frozen=True)
class CLIPVisionConfig:
  """The fields of a HF CLIP vision config the port uses."""
  blocks: prenorm.BlockConfig
  image_size: int = 224
  patch_size: int = 32
  projection_dim: int = 0  # 0 = no visual_projection


class Embeddings(nn.Module):
  """Bias-free patchify conv + class token + learned positions (HF `CLIPVisionEmbeddings`)."""
  config: CLIPVisionConfig

  @nn.compact
  def __call__(self, pixels: jax.Array) -> jax.Array:
    c, width = self.config, self.config.blocks.hidden_size
    p = c.patch_size
    x = nn.Conv(width, (p, p), strides=(p, p), padding="VALID", use_bias=False, name="patch_embedding")(pixels)
    x = x.reshape(x.shape[0], -1, width)
    cls = self.param("class_embedding", nn.initializers.normal(0.02), (width,))
    x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, width)), x], axis=1)
    return x + nn.Embed(x.shape[1], width, name="position_embedding")(jnp.arange(x.shape[1]))[None]


class CLIPVisionModel(nn.Module):
  """pixels [B,S,S,3] -> {'last_hidden_state', 'pooler_output', ['image_embeds']}."""
  config: CLIPVisionConfig

  @nn.compact
  def __call__(self, pixels: jax.Array) -> dict[str, jax.Array]:
    c = self.config
    chex.assert_shape(pixels, (None, c.image_size, c.image_size, 3))
    eps = c.blocks.layer_norm_eps
    h = nn.LayerNorm(epsilon=eps, name="pre_layrnorm")(Embeddings(c, name="embeddings")(pixels))
    h, _ = prenorm.Encoder(c.blocks, name="encoder")(h, None)
    pooled = nn.LayerNorm(epsilon=eps, name="post_layernorm")(h[:, 0])
    out = {"last_hidden_state": h, "pooler_output": pooled}
    if c.projection_dim:
      out["image_embeds"] = nn.Dense(c.projection_dim, use_bias=False, name="visual_projection")(pooled)
    return out


def load_clip_vision(path: str | Path) -> tuple[CLIPVisionModel, Any, ImageProcessing]:
  """Loads a HF CLIPVisionModel(WithProjection) or CLIPModel directory -> (module, params, preprocessing).

  Preprocessing here is a plain bicubic resize to a square (HF resizes the short side, then centre-crops).
  """
  model_dir = resolve_model_dir(path)
  raw = read_config(model_dir)
  if raw.get("model_type") not in ("clip", "clip_vision_model"):
    raise UserError(f"{model_dir} holds a {raw.get('model_type')!r} model; expected a CLIP vision model")
  d = raw.get("vision_config", raw)
  state = read_state_dict(model_dir)
  proj = state.get("visual_projection.weight")
  config = CLIPVisionConfig(prenorm.block_config(d), d.get("image_size", 224), d.get("patch_size", 32),
                            0 if proj is None else proj.shape[0])
  module = CLIPVisionModel(config)
  pixels = jax.ShapeDtypeStruct((1, config.image_size, config.image_size, 3), jnp.float32)
  abstract = jax.eval_shape(lambda x: module.init(jax.random.key(0), x), pixels)["params"]
  params = convert(state, CLIP_VISION_RULES, abstract, CLIP_VISION_IGNORE)
  return module, params, ImageProcessing.from_dir(model_dir, config.image_size)


def clip_score(image_embeds: np.ndarray, text_embeds: np.ndarray) -> np.ndarray:
  """100 * max(cos, 0) per (image, text) pair: [B,P] x [B,P] -> [B]."""
  a = image_embeds / np.linalg.norm(image_embeds, axis=-1, keepdims=True)
  b = text_embeds / np.linalg.norm(text_embeds, axis=-1, keepdims=True)
  return np.maximum(100.0 * (a * b).sum(-1), 0.0)


class CLIPScorer:
  """CLIP score of images against captions with a full CLIPModel directory (text + vision + projections)."""

  def __init__(self, path: str | Path):
    self.text, self.text_params, self.tokenizer = clip_text.load_clip_text(path)
    self.vision, self.vision_params, self.processing = load_clip_vision(path)
    if not (self.text.config.projection_dim and self.vision.config.projection_dim):
      raise UserError(f"{path} lacks text_projection / visual_projection; CLIP score needs a CLIPModel")
    self._text = jax.jit(lambda p, i, m: self.text.apply({"params": p}, i, m)["text_embeds"])
    self._vision = jax.jit(lambda p, x: self.vision.apply({"params": p}, x)["image_embeds"])

  def __call__(self, images: list[np.ndarray], captions: list[str]) -> np.ndarray:
    """uint8 images and their captions -> CLIP scores [B]."""
    ids, mask = self.tokenizer.encode(captions, length=self.text.config.max_position_embeddings)
    t = np.asarray(self._text(self.text_params, ids, mask))
    v = np.asarray(self._vision(self.vision_params, np.stack([self.processing(im) for im in images])))
    return clip_score(v, t)
