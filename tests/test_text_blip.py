"""BLIP captioning port vs transformers (PyTorch) on a tiny random BlipForConditionalGeneration."""

import json

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from jaxsemic.text import blip, generate  # noqa: E402

WORDS = [f"w{i}" for i in range(93)]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[MASK]"] + WORDS + ["[DEC]", "[SEP]"]  # 99 tokens: [DEC]=97, [SEP]=98


def save_tiny_blip(path, seed=0):
  """A tiny random BLIP captioner with a matching BERT vocabulary; weights jittered away from their init."""
  torch.manual_seed(seed)
  text = dict(vocab_size=len(VOCAB), hidden_size=32, encoder_hidden_size=24, intermediate_size=37,
              num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=40,
              bos_token_id=VOCAB.index("[DEC]"), eos_token_id=2, sep_token_id=VOCAB.index("[SEP]"),
              pad_token_id=0)
  vision = dict(hidden_size=24, intermediate_size=30, num_hidden_layers=2, num_attention_heads=4,
                image_size=32, patch_size=8, initializer_range=0.02)
  config = transformers.BlipConfig(text_config=text, vision_config=vision)
  config._attn_implementation = "eager"
  model = transformers.BlipForConditionalGeneration(config).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.05 * torch.randn_like(p))  # LayerNorms and near-zero inits become informative
  model.save_pretrained(path)
  (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
  return model


def _pixels(n, seed=0):
  return np.random.default_rng(seed).normal(size=(n, 32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """(torch model, Flax module, params, tokenizer, directory), built once for this file."""
  path = tmp_path_factory.mktemp("tiny_blip")
  model = save_tiny_blip(path, seed=1)
  module, params, tok, _ = blip.load_blip(path)
  return model, module, params, tok, path


def test_tiny_blip_logits_match_transformers(tiny):
  model, module, params, _, _ = tiny
  apply = jax.jit(module.apply)
  pixels = _pixels(2)
  ids = np.array([[97, 5, 17, 40, 60, 98, 0], [97, 9, 9, 30, 98, 0, 0]], np.int32)
  mask = (np.arange(7)[None] < np.array([[6], [5]])).astype(np.int32)
  with torch.no_grad():
    ref = model(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)), input_ids=torch.tensor(ids).long(),
                attention_mask=torch.tensor(mask))
  image = jax.jit(module.apply, static_argnames="method")({"params": params}, pixels,
                                                         method=module.encode_image)
  np.testing.assert_allclose(image, ref.image_embeds, atol=1e-4, rtol=0)
  logits = apply({"params": params}, pixels, ids, mask)
  np.testing.assert_allclose(logits, ref.logits, atol=1e-4, rtol=0)

  # Able to fail: perturb one cross-attention weight.
  bad = jax_tree_perturb(params, ("text_decoder", "bert", "encoder", "layer_1", "crossattention", "self",
                                  "value", "bias"), 0.05)
  worse = apply({"params": bad}, pixels, ids, mask)
  assert np.abs(np.asarray(worse) - ref.logits.numpy()).max() > 1e-3


def jax_tree_perturb(tree, path, delta):
  """A copy of a nested dict with `delta` added to the leaf at `path`."""
  if not path:
    return tree + delta
  return {**tree, path[0]: jax_tree_perturb(tree[path[0]], path[1:], delta)}


def test_tiny_blip_greedy_ids_match_transformers(tiny):
  model, module, params, tok, _ = tiny
  prompt = "w3 w4"
  cfg = module.config
  start = generate.prompt_ids(tok, prompt, cfg.bos_token_id)
  assert start.tolist() == [97] + [VOCAB.index(w) for w in prompt.split()]
  pixels = _pixels(3, seed=2)
  ours = np.asarray(generate.greedy(module, params, pixels, start, max_length=12,
                                    eos_id=cfg.sep_token_id, pad_id=cfg.pad_token_id))
  hf_in = np.concatenate([[2], start[1:], [98]])[None].repeat(3, 0)  # [CLS] prompt [SEP], as the processor
  with torch.no_grad():
    ref = model.generate(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)),
                         input_ids=torch.tensor(hf_in).long(), max_length=12, do_sample=False, num_beams=1)
  ref = ref.numpy()
  np.testing.assert_array_equal(ours[:, :ref.shape[1]], ref)
  assert (ours[:, ref.shape[1]:] == cfg.pad_token_id).all()


def test_tiny_blip_beam_search_matches_transformers(tiny):
  """HF beam semantics (top-2K, finished pool, length penalty, early-stop heuristic), where [SEP] competes."""
  model, module, params, tok, _ = tiny
  sep = module.config.sep_token_id
  head = params["text_decoder"]["cls"]["predictions"]
  params = {**params, "text_decoder": {**params["text_decoder"], "cls": {"predictions": {
      **head, "bias": head["bias"].at[sep].add(0.7)}}}}
  pixels = 3 * _pixels(2, seed=5)
  start = generate.prompt_ids(tok, "", module.config.bos_token_id)
  kw = dict(max_length=12, eos_id=sep, pad_id=module.config.pad_token_id)
  greedy = None
  with torch.no_grad():
    model.text_decoder.cls.predictions.bias[sep] += 0.7
    try:
      for beams in (1, 3):  # HF: 1 beam = greedy decoding (no prompt here; the test above has one)
        ref = model.generate(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)),
                             input_ids=torch.tensor([[2, sep]] * 2), max_length=12, num_beams=beams,
                             do_sample=False).numpy()
        ours = np.asarray(generate.beam_search(module, params, pixels, start, num_beams=beams, **kw)
                          if beams > 1 else generate.greedy(module, params, pixels, start, **kw))
        np.testing.assert_array_equal(ours[:, :ref.shape[1]], ref)
        assert (ours[:, ref.shape[1]:] == module.config.pad_token_id).all()
        greedy = ours if beams == 1 else greedy
    finally:
      model.text_decoder.cls.predictions.bias[sep] -= 0.7
  assert (ours != greedy).any()  # the 3-beam search found a caption greedy decoding misses


def test_caption_command(tiny, tmp_path_factory, capsys):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from jaxsemic import cli  # pylint: disable=import-outside-toplevel
  model_dir = tiny[-1]
  images = tmp_path_factory.mktemp("images")
  rng = np.random.default_rng(0)
  for name in ("a.png", "sub/b.jpg", "c.png"):
    (images / name).parent.mkdir(exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (40 + len(name), 50, 3), np.uint8)).save(images / name)
  (images / "broken.png").write_bytes(b"not a png")
  out = tmp_path_factory.mktemp("out") / "captions.jsonl"
  argv = ["caption", str(images), "--blip", str(model_dir), "--out", str(out), "--max-length", "8",
          "--batch", "2", "--prompt", "w3"]
  assert cli.main(argv) == 0
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert [r["file"] for r in rows] == ["a.png", "c.png", "sub/b.jpg"]
  assert all(len(r["captions"]) == 1 and r["captions"][0].startswith("w3") for r in rows)
  assert "broken.png" in capsys.readouterr().err
  assert cli.main(argv) == 1  # exists, no --force
  assert "--force" in capsys.readouterr().err
  # The caption matches greedy decoding of the same preprocessed image.
  module, params, tok, processing = blip.load_blip(model_dir)
  pixels = processing(np.asarray(Image.open(images / "a.png").convert("RGB")))[None]
  ids = generate.greedy(module, params, pixels, generate.prompt_ids(tok, "w3", 97), max_length=8,
                        eos_id=98, pad_id=0)
  assert rows[0]["captions"][0] == tok.decode(np.asarray(ids)[0, 1:])
