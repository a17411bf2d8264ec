"""clip-sim and clip-iqa vs the same computation with transformers' PyTorch CLIPModel (tiny random)."""

import string

import numpy as np
import pytest

from jaxsemic.cli import main
from jaxsemic.errors import UserError
from jaxsemic.eval.metrics.clip import IQA_PROMPTS, CLIPMetrics, clip_metrics, good_photo_probability

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
  """A random CLIPModel (2 layers, 32 px) with a character-level BPE tokenizer, saved as HF files."""
  path = tmp_path_factory.mktemp("clip")
  torch.manual_seed(5)
  chars = list(string.ascii_lowercase + ".")
  vocab = {t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>"] + chars +
                                      [c + "</w>" for c in chars] + ["go"])}
  tower = dict(num_hidden_layers=2, num_attention_heads=4, attn_implementation="eager")
  config = transformers.CLIPConfig(
      text_config=dict(tower, vocab_size=len(vocab), hidden_size=32, intermediate_size=37,
                       max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1),
      vision_config=dict(tower, hidden_size=24, intermediate_size=30, image_size=32, patch_size=8),
      projection_dim=16, attn_implementation="eager")
  model = transformers.CLIPModel(config).eval()
  for p in model.parameters():  # larger than the default init: embeddings that differ per image
    p.data.add_(0.05 * torch.randn_like(p))
  model.save_pretrained(path)
  transformers.CLIPTokenizer(vocab=vocab, merges=[("g", "o")]).save_pretrained(path)
  return str(path), model


def _photos():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 256, (3, 40, 48, 3)).astype(np.float32) / 255
  y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
  return x, np.round(y * 255) / 255


@pytest.mark.parametrize("logit_scale", [100.0, 1.0])  # CLIP-IQA's 100 saturates on a random model
def test_clip_sim_and_iqa_match_transformers(tiny_clip, logit_scale):
  path, model = tiny_clip
  m = CLIPMetrics(path)
  m.logit_scale = logit_scale
  x, y = _photos()
  ours_sim, ours_iqa = m.similarity(x, y), m.iqa(x, y)

  tok = transformers.CLIPTokenizer.from_pretrained(path)
  prompts = tok(list(IQA_PROMPTS), padding="max_length", max_length=16, return_tensors="pt")

  def embeds(images):  # the same pixels (our resize + normalisation), then transformers' towers
    pixels = np.stack([m.processing(np.round(im * 255).astype(np.uint8)) for im in images])
    with torch.no_grad():
      out = model(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)), **prompts)
    return out.image_embeds, out.text_embeds

  (ex, _), (ey, text) = embeds(x), embeds(y)
  want_sim = torch.nn.functional.cosine_similarity(ex, ey).numpy()
  cos = torch.nn.functional.normalize(ey, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).T
  want_iqa = torch.softmax(logit_scale * cos, dim=-1)[:, 0].numpy()
  unit = m.prompts / np.linalg.norm(m.prompts, axis=-1, keepdims=True)  # CLIPModel returns unit embeds
  np.testing.assert_allclose(unit, text.numpy(), atol=1e-5)
  np.testing.assert_allclose(ours_sim, want_sim, atol=1e-4)
  np.testing.assert_allclose(ours_iqa, want_iqa, atol=1e-4)
  assert np.all(ours_sim < 0.999) and np.all((ours_iqa > 0) & (ours_iqa < 1))
  if logit_scale == 1.0:
    assert np.ptp(ours_iqa) > 1e-3  # not saturated: the comparison can fail
  np.testing.assert_allclose(m.similarity(x, x), 1.0, atol=1e-6)


def test_clip_metrics_by_name(tiny_clip):
  fns = clip_metrics(["lpips-alex", "clip-iqa", "clip-sim"], tiny_clip[0])
  assert sorted(fns) == ["clip-iqa", "clip-sim"]
  x, y = _photos()
  assert fns["clip-sim"](x, y).shape == fns["clip-iqa"](x, y).shape == (3,)


def test_good_photo_probability_is_a_two_way_softmax():
  img = np.array([[1.0, 0.0], [0.6, 0.8]])
  prompts = np.array([[2.0, 0.0], [0.0, 3.0]])  # norms do not matter
  p = good_photo_probability(img, prompts)
  np.testing.assert_allclose(p, [1 / (1 + np.exp(-100.0)), 1 / (1 + np.exp(100 * (0.8 - 0.6)))])


def test_without_clip_weights_is_a_one_line_error(tmp_path, capsys):
  with pytest.raises(UserError, match="clip-iqa need CLIP weights, which cannot be downloaded here"):
    clip_metrics(["lpips-alex", "clip-iqa"], None)
  assert clip_metrics(["lpips-alex"], None) == {}
  from PIL import Image
  Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
  assert main(["eval", "--model", str(tmp_path / "no_model"), "--data", str(tmp_path), "--metrics",
               "clip-sim", "--quiet"]) == 1
  err = capsys.readouterr().err
  assert "clip-sim need CLIP weights" in err and "--clip DIR" in err and err.count("\n") == 1
