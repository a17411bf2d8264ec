"""CLIP similarity and zero-shot CLIP-IQA with a user-given Hugging Face CLIP model directory.

- clip-sim: cosine similarity of the CLIP image embeddings of original and reconstruction (SEDIC's
  ClipSIM; higher = more of the image's semantics kept).
- clip-iqa: CLIP-IQA (Wang, Chan & Loy, AAAI 2023, Sec. 3), no-reference: softmax over 100 x the
  cosine similarities of the image with the antonym prompts "Good photo." / "Bad photo.", the
  probability of "Good photo.". This is the zero-shot metric, not CLIP-IQA+ (which learns the prompt
  context, CoOp-style) and not pyiqa's five-pair ensemble. The paper uses a ResNet-50 CLIP without
  positional embedding at full resolution; here any HF CLIP (ViT) at its input size (bicubic resize).

CLIP weights cannot be downloaded here; the user gives a directory (`eval --clip DIR`).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxsemic.errors import UserError

CLIP_METRICS = ("clip-sim", "clip-iqa")
IQA_PROMPTS = ("Good photo.", "Bad photo.")
LOGIT_SCALE = 100.0
NO_WEIGHTS = ("{names} need CLIP weights, which cannot be downloaded here: give a Hugging Face CLIP "
              "model directory (config.json, model.safetensors, tokenizer files; e.g. a local copy of "
              "openai/clip-vit-base-patch32) with --clip DIR")


def _unit(v: np.ndarray) -> np.ndarray:
  v = np.asarray(v, np.float64)
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def good_photo_probability(image_embeds: np.ndarray, prompt_embeds: np.ndarray,
                           logit_scale: float = LOGIT_SCALE) -> np.ndarray:
  """[B,P] images x [2,P] (good, bad) prompts -> P(good) [B] = softmax(scale * cos)[:, 0]."""
  logits = logit_scale * _unit(image_embeds) @ _unit(prompt_embeds).T
  logits -= logits.max(axis=-1, keepdims=True)
  p = np.exp(logits)
  return p[:, 0] / p.sum(axis=-1)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Row-wise cosine similarity of [B,P] x [B,P] -> [B]."""
  return np.sum(_unit(a) * _unit(b), axis=-1)


class CLIPMetrics:
  """CLIP image embeddings (and the IQA prompt embeddings) of one CLIPModel directory."""

  logit_scale = LOGIT_SCALE

  def __init__(self, path: str, with_prompts: bool = True):
    from jaxsemic.text.clip_vision import load_clip_vision
    vision, self.params, self.processing = load_clip_vision(path)
    if not vision.config.projection_dim:
      raise UserError(f"{path} has no visual_projection; CLIP metrics need a full CLIPModel")
    self._embed = jax.jit(lambda p, x: vision.apply({"params": p}, x)["image_embeds"])
    self.prompts = self._prompt_embeds(path) if with_prompts else None

  @staticmethod
  def _prompt_embeds(path: str) -> np.ndarray:
    from jaxsemic.text.clip_text import load_clip_text
    text, params, tokenizer = load_clip_text(path)
    if not text.config.projection_dim:
      raise UserError(f"{path} has no text_projection; CLIP-IQA needs a full CLIPModel")
    ids, mask = tokenizer.encode(list(IQA_PROMPTS), length=text.config.max_position_embeddings)
    return np.asarray(text.apply({"params": params}, ids, mask)["text_embeds"])

  def image_embeds(self, images: np.ndarray) -> np.ndarray:
    """uint8-valued [B,H,W,3] -> [B,P] projected CLIP image embeddings."""
    pixels = np.stack([self.processing(np.asarray(im, np.uint8)) for im in images])
    return np.asarray(self._embed(self.params, pixels))

  def similarity(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """clip-sim of float [B,H,W,3] images in [0, 1] (originals x, reconstructions y) -> [B]."""
    return cosine_similarity(self.image_embeds(_to_uint8(x)), self.image_embeds(_to_uint8(y)))

  def iqa(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """clip-iqa of the reconstructions y (float [B,H,W,3] in [0, 1]); x is not used."""
    del x
    return good_photo_probability(self.image_embeds(_to_uint8(y)), self.prompts, self.logit_scale)


def _to_uint8(x: np.ndarray) -> np.ndarray:
  return np.clip(np.round(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def clip_metrics(names: list[str], path: str | None) -> dict:
  """{name: fn(x, y) -> [B]} for the requested CLIP metrics; UserError without a CLIP directory."""
  names = [n for n in names if n in CLIP_METRICS]
  if not names:
    return {}
  if not path:
    raise UserError(NO_WEIGHTS.format(names=" and ".join(names)))
  m = CLIPMetrics(path, with_prompts="clip-iqa" in names)
  fns = {"clip-sim": m.similarity, "clip-iqa": m.iqa}
  return {n: fns[n] for n in names}
