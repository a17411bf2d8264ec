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
    logits = module.apply(variables, ids, None, image, i - 1, method=module.decode)[:, 0]
    nxt = jnp.where(done, pad_id, jnp.argmax(logits, axis=-1).astype(jnp.int32))
    return i + 1, ids.at[:, i].set(nxt), done | (nxt == eos_id)

  cond = lambda c: (c[0] < max_length) & ~jnp.all(c[2])
  _, ids, _ = jax.lax.while_loop(cond, step, (p, ids, jnp.zeros((b,), bool)))
  return ids


@functools.partial(jax.jit, static_argnames=("module", "max_length", "eos_id", "pad_id", "num_beams",
                                             "length_penalty"))
def beam_search(module: BlipForConditionalGeneration, params: Any, pixels: jax.Array, prompt: jax.Array, *,
                max_length: int, eos_id: int, pad_id: int, num_beams: int,
                length_penalty: float = 1.0) -> jax.Array:
  """Beam search with the semantics of HF `generate(num_beams=K)` (transformers 5, early_stopping=False).

  Each step keeps the K best unfinished continuations (`running`) out of the top 2K, and moves those of the
  top K that end in [SEP] (or reach max_length) into a pool of K finished hypotheses scored by
  sum log p / generated_length^length_penalty. A batch row stops once no running beam can beat its worst
  finished one. Returns the best finished hypothesis, ids [B, max_length] (pad after [SEP]).
  """
  variables = {"params": params}
  k, neg = num_beams, jnp.float32(-1e9)
  image = jnp.repeat(module.apply(variables, pixels, method=module.encode_image), k, axis=0)  # [B*K,N,D]
  b, p = pixels.shape[0], prompt.shape[0]
  gather = lambda x, idx: jnp.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1)

  def step(c):
    i = c["i"]
    logits = module.apply(variables, c["ids"].reshape(b * k, max_length), None, image, i - 1,
                          method=module.decode)[:, 0]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1).reshape(b, k, -1)
    vocab = logp.shape[-1]
    top, flat = jax.lax.top_k((logp + c["scores"][..., None]).reshape(b, k * vocab), 2 * k)  # [B,2K]
    cand = gather(c["ids"], flat // vocab).at[:, :, i].set((flat % vocab).astype(jnp.int32))
    hits = (cand[:, :, i] == eos_id) | (i + 1 >= max_length)
    # Running beams for the next step: the K best continuations that did not finish.
    run_top, run_idx = jax.lax.top_k(top + neg * hits, k)
    # Finished pool: merge the newly finished among the top K, scored with the length penalty.
    new_done = hits & (jnp.arange(2 * k) < k)[None]
    norm = top / jnp.float32(i + 1 - p) ** length_penalty
    norm = norm + neg * ~c["open"][:, None] + neg * ~new_done
    pool_top, pool_idx = jax.lax.top_k(jnp.concatenate([c["pool_scores"], norm], 1), k)
    pool_ids = gather(jnp.concatenate([c["pool_ids"], cand], 1), pool_idx)
    pool_done = gather(jnp.concatenate([c["pool_done"], new_done], 1), pool_idx)
    # Can a running beam still beat the worst finished hypothesis? (HF's early-stop heuristic)
    best_running = run_top[:, :1] / jnp.float32(i + 1 - p) ** length_penalty
    worst = jnp.where(pool_done, pool_top.min(1, keepdims=True), neg)
    is_open = c["open"] & jnp.any(best_running > worst, axis=1)
    return dict(i=i + 1, ids=gather(cand, run_idx), scores=run_top, pool_ids=pool_ids, pool_scores=pool_top,
                pool_done=pool_done, open=is_open)

  ids = jnp.full((b, k, max_length), pad_id, jnp.int32).at[:, :, :p].set(prompt)
  init = dict(i=jnp.int32(p), ids=ids, scores=jnp.tile(jnp.array([0.0] + [-1e9] * (k - 1), jnp.float32), (b, 1)),
              pool_ids=ids, pool_scores=jnp.full((b, k), neg), pool_done=jnp.zeros((b, k), bool),
              open=jnp.ones((b,), bool))
  out = jax.lax.while_loop(lambda c: (c["i"] < max_length) & jnp.any(c["open"]), step, init)
  return out["pool_ids"][:, 0]


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
