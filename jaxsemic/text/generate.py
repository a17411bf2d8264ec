"""Caption generation with the BLIP port: greedy and beam search under jit, fixed maximum length.

Sequences live in a fixed [B, max_length] buffer; every step re-runs the decoder on the whole buffer (the
causal mask hides the not-yet-written positions), so there is no cache and one compiled program per
(batch, max_length, beams). Generation stops early once every sequence has emitted [SEP].
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.errors import UserError
from jaxsemic.text.blip import BlipForConditionalGeneration, load_blip
from jaxsemic.text.tokenize import Tokenizer


def prompt_ids(tokenizer: Tokenizer, prompt: str, bos_token_id: int) -> np.ndarray:
  """[DEC] + prompt tokens (HF: tokenize with [CLS]..[SEP], put bos first, drop the trailing [SEP])."""
  ids, mask = tokenizer.encode([prompt])
  ids = ids[0][mask[0].astype(bool)]
  return np.concatenate([[bos_token_id], ids[1:-1]]).astype(np.int32)


@functools.partial(jax.jit, static_argnames=("module", "max_length", "eos_id", "pad_id"))
def greedy(module: BlipForConditionalGeneration, params: Any, pixels: jax.Array, prompt: jax.Array, *,
           max_length: int, eos_id: int, pad_id: int) -> jax.Array:
  """Greedy decoding: pixels [B,S,S,3], prompt [P] -> ids [B, max_length] (pad after [SEP])."""
  variables = {"params": params}
  image = module.apply(variables, pixels, method=module.encode_image)
  b, p = pixels.shape[0], prompt.shape[0]
  ids = jnp.full((b, max_length), pad_id, jnp.int32).at[:, :p].set(prompt)

  def step(carry):
    i, ids, done = carry
    logits = module.apply(variables, ids, None, image, method=module.decode)
    nxt = jnp.where(done, pad_id, jnp.argmax(logits[:, i - 1], axis=-1).astype(jnp.int32))
    return i + 1, ids.at[:, i].set(nxt), done | (nxt == eos_id)

  cond = lambda c: (c[0] < max_length) & ~jnp.all(c[2])
  _, ids, _ = jax.lax.while_loop(cond, step, (p, ids, jnp.zeros((b,), bool)))
  return ids


@functools.partial(jax.jit, static_argnames=("module", "max_length", "eos_id", "pad_id", "num_beams",
                                             "length_penalty"))
def beam_search(module: BlipForConditionalGeneration, params: Any, pixels: jax.Array, prompt: jax.Array, *,
                max_length: int, eos_id: int, pad_id: int, num_beams: int,
                length_penalty: float = 1.0) -> jax.Array:
  """Beam search; finished hypotheses are ranked by sum log p / length^length_penalty (HF convention).

  Returns ids [B, max_length]. A beam that emitted [SEP] keeps its score and is padded; the search ends when
  every beam of every image is finished or the buffer is full.
  """
  variables = {"params": params}
  k = num_beams
  image = module.apply(variables, pixels, method=module.encode_image)
  b, p = pixels.shape[0], prompt.shape[0]
  image = jnp.repeat(image, k, axis=0)  # [B*K, N, D]
  ids = jnp.full((b * k, max_length), pad_id, jnp.int32).at[:, :p].set(prompt)
  scores = jnp.tile(jnp.array([0.0] + [-1e9] * (k - 1), jnp.float32), b)  # only beam 0 alive at first
  done = jnp.zeros((b * k,), bool)
  length = jnp.full((b * k,), p, jnp.int32)  # tokens generated so far incl. prompt (for the penalty)

  def step(carry):
    i, ids, scores, done, length = carry
    logits = module.apply(variables, ids, None, image, method=module.decode)[:, i - 1]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)  # [B*K, V]
    vocab = logp.shape[-1]
    # A finished beam has exactly one continuation (pad) at no cost.
    pad_only = jnp.full((vocab,), -jnp.inf).at[pad_id].set(0.0)
    cand = scores[:, None] + jnp.where(done[:, None], pad_only[None], logp)
    top, flat = jax.lax.top_k(cand.reshape(b, k * vocab), k)  # [B, K]
    src = (flat // vocab + jnp.arange(b)[:, None] * k).reshape(-1)
    tok = (flat % vocab).reshape(-1).astype(jnp.int32)
    was_done = done[src]
    ids = ids[src].at[:, i].set(tok)
    new_length = jnp.where(was_done, length[src], i + 1)
    return i + 1, ids, top.reshape(-1), was_done | (tok == eos_id), new_length

  cond = lambda c: (c[0] < max_length) & ~jnp.all(c[3])
  _, ids, scores, done, length = jax.lax.while_loop(cond, step, (p, ids, scores, done, length))
  ranked = (scores / length.astype(jnp.float32) ** length_penalty).reshape(b, k)
  best = jnp.argmax(ranked, axis=-1) + jnp.arange(b) * k
  return ids[best]


class Captioner:
  """BLIP captioner: `captioner(images uint8 [H,W,3] list) -> captions` (the prompt is kept, as in HF)."""

  def __init__(self, path: str, *, prompt: str = "", max_length: int = 30, num_beams: int = 1,
               batch_size: int = 8):
    self.module, self.params, self.tokenizer, self.processing = load_blip(path)
    cfg = self.module.config
    self.prompt = prompt_ids(self.tokenizer, prompt, cfg.bos_token_id)
    if not len(self.prompt) < max_length <= cfg.text.max_position_embeddings:
      raise UserError(f"max length must be in ({len(self.prompt)}, {cfg.text.max_position_embeddings}]")
    if num_beams < 1:
      raise UserError("the number of beams must be at least 1")
    self.max_length, self.num_beams, self.batch_size = max_length, num_beams, batch_size

  def __call__(self, images: list[np.ndarray]) -> list[str]:
    """Captions a list of images, `batch_size` at a time (the last batch padded, so one compile)."""
    cfg = self.module.config
    out = []
    for start in range(0, len(images), self.batch_size):
      chunk = [self.processing(im) for im in images[start:start + self.batch_size]]
      pixels = np.zeros((self.batch_size, *chunk[0].shape), np.float32)
      pixels[:len(chunk)] = chunk
      kw = dict(max_length=self.max_length, eos_id=cfg.sep_token_id, pad_id=cfg.pad_token_id)
      if self.num_beams == 1:
        ids = greedy(self.module, self.params, pixels, self.prompt, **kw)
      else:
        ids = beam_search(self.module, self.params, pixels, self.prompt, num_beams=self.num_beams, **kw)
      out.extend(self.tokenizer.decode(row[1:]) for row in np.asarray(ids)[:len(chunk)])  # drop [DEC]
    return out
