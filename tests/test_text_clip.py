"""CLIP text port vs transformers (PyTorch) on tiny random configs; CLIP tokenizers vs HF."""

import json
import string

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from jaxsemic.text import clip_text  # noqa: E402
from jaxsemic.text.tokenize import load_tokenizer  # noqa: E402

TEXTS = ["a cat and a dog!", "", "dog, cat. and a cat and a dog and a cat", "zebra"]


def _tiny_vocab():
  vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
  for ch in string.ascii_lowercase + ".,!":
    vocab[ch] = len(vocab)
    vocab[ch + "</w>"] = len(vocab)
  merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("a", "n"), ("an", "d</w>")]
  for m in merges:
    vocab.setdefault("".join(m), len(vocab))
  return vocab, merges


def _save_tiny_clip(path, eos_token_id, projection):
  torch.manual_seed(0)
  vocab, merges = _tiny_vocab()
  config = transformers.CLIPTextConfig(
      vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
      max_position_embeddings=24, eos_token_id=eos_token_id, bos_token_id=0, pad_token_id=1,
      projection_dim=16, attn_implementation="eager")
  cls = transformers.CLIPTextModelWithProjection if projection else transformers.CLIPTextModel
  model = cls(config).eval()
  model.save_pretrained(path)
  tok = transformers.CLIPTokenizer(vocab=vocab, merges=merges)
  tok.save_pretrained(path)
  return model, tok


@pytest.mark.parametrize("eos_token_id,projection", [(1, True), (2, False)])
def test_tiny_clip_text_matches_transformers(tmp_path, eos_token_id, projection):
  model, hf_tok = _save_tiny_clip(tmp_path, eos_token_id, projection)
  module, params, tok = clip_text.load_clip_text(tmp_path)
  ids, mask = tok.encode(TEXTS, length=24)
  ref_ids = hf_tok(TEXTS, padding="max_length", max_length=24, return_tensors="np")
  np.testing.assert_array_equal(ids, ref_ids["input_ids"])
  np.testing.assert_array_equal(mask, ref_ids["attention_mask"])
  with torch.no_grad():
    ref = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask),
                output_hidden_states=True)
  ours = module.apply({"params": params}, ids, mask, output_hidden_states=True)
  np.testing.assert_allclose(ours["last_hidden_state"], ref.last_hidden_state, atol=1e-4, rtol=0)
  np.testing.assert_allclose(ours["hidden_states"][-2], ref.hidden_states[-2], atol=1e-4, rtol=0)
  if projection:
    np.testing.assert_allclose(ours["text_embeds"], ref.text_embeds, atol=1e-4, rtol=0)
  else:
    np.testing.assert_allclose(ours["pooler_output"], ref.pooler_output, atol=1e-4, rtol=0)

  # Able to fail: one perturbed weight breaks the agreement.
  ln = params["encoder"]["layers_0"]["layer_norm2"]
  bad = {**params, "encoder": {**params["encoder"], "layers_0": {
      **params["encoder"]["layers_0"], "layer_norm2": {**ln, "scale": ln["scale"] * 1.1}}}}
  worse = module.apply({"params": bad}, ids, mask)["last_hidden_state"]
  assert np.abs(np.asarray(worse) - ref.last_hidden_state.numpy()).max() > 1e-3


def test_clip_bpe_from_vocab_and_merges(tmp_path):
  vocab, merges = _tiny_vocab()
  hf_tok = transformers.CLIPTokenizer(vocab=vocab, merges=merges, pad_token="!")  # as Stable Diffusion 2
  (tmp_path / "vocab.json").write_text(json.dumps(vocab))
  (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
  (tmp_path / "tokenizer_config.json").write_text(json.dumps({"pad_token": "!"}))
  tok = load_tokenizer(tmp_path, 77)
  assert tok.pad_id == vocab["!"]
  ids, mask = tok.encode(TEXTS + ["  Cat\tAND   dog  "])
  for row, m, ref in zip(ids, mask, hf_tok(TEXTS + ["  Cat\tAND   dog  "]).input_ids):
    assert row[m.astype(bool)].tolist() == ref
  assert tok.decode(ids[0]) == hf_tok.decode(hf_tok(TEXTS[:1]).input_ids[0], skip_special_tokens=True)


def test_tiny_clip_model_vision_and_score_match_transformers(tmp_path):
  from jaxsemic.text import clip_vision  # pylint: disable=import-outside-toplevel
  torch.manual_seed(3)
  vocab, merges = _tiny_vocab()
  text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=24, bos_token_id=0, eos_token_id=1, pad_token_id=1)
  vision = dict(hidden_size=24, intermediate_size=30, num_hidden_layers=2, num_attention_heads=4,
                image_size=32, patch_size=8)
  config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
  config._attn_implementation = "eager"
  model = transformers.CLIPModel(config).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.05 * torch.randn_like(p))
  model.save_pretrained(tmp_path)
  transformers.CLIPTokenizer(vocab=vocab, merges=merges).save_pretrained(tmp_path)

  module, params, processing = clip_vision.load_clip_vision(tmp_path)
  rng = np.random.default_rng(0)
  images = [rng.integers(0, 255, (40, 48, 3), np.uint8) for _ in range(2)]
  pixels = np.stack([processing(im) for im in images])
  ours = module.apply({"params": params}, pixels)
  with torch.no_grad():
    ref = model.vision_model(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)))
    ref_img = model.visual_projection(ref.pooler_output)
  np.testing.assert_allclose(ours["last_hidden_state"], ref.last_hidden_state, atol=1e-4, rtol=0)
  np.testing.assert_allclose(ours["image_embeds"], ref_img, atol=1e-4, rtol=0)

  scorer = clip_vision.CLIPScorer(tmp_path)
  captions = ["a cat", "a dog and a cat"]
  ids, mask = scorer.tokenizer.encode(captions, length=24)
  with torch.no_grad():
    out = model(input_ids=torch.tensor(ids).long(), attention_mask=torch.tensor(mask),
                pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)))
  want = np.maximum(100 * torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds).numpy(), 0)
  np.testing.assert_allclose(scorer(images, captions), want, atol=1e-3)
