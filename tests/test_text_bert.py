"""BERT port vs transformers (PyTorch): tiny random config, and the real all-MiniLM-L6-v2 weights."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from jaxsemic.errors import UserError  # noqa: E402
from jaxsemic.text import bert, embed, hf_weights  # noqa: E402

SENTENCES = [
    "A woman stands in the dining area at the table.",
    "A room with chairs, a table, and a woman in it.",
    "",
    "a",
    "Two dogs playing in the snow near a red barn.",
    "A stone building with red shutters on the windows and a red door",
    "Frontal view of a two-story building with a pale, weathered stone block facade.",
    "The quick brown fox jumps over the lazy dog!",
    "Ünïcödé text, numbers 1234 and punctuation: ;-) ...",
    "A very long caption " + "that keeps going and going " * 30,
    "kitchen", "a bowl of fruit on a wooden table", "a man riding a wave on top of a surfboard",
    "a giraffe standing next to a tree", "an airplane flying in a clear blue sky",
    "a plate of food with broccoli and rice", "two people sitting on a bench in a park",
    "a cat sleeping on a laptop keyboard", "a red double decker bus on a city street",
    "a close up of a pizza with cheese and tomatoes", "children flying kites on the beach",
    "a lighthouse on a rocky shore at sunset", "a parrot with colourful feathers",
    "snow covered mountains under a cloudy sky", "a bicycle leaning against a brick wall",
    "a group of zebras grazing in a field", "a boat docked at a wooden pier",
    "a bathroom with a white sink and mirror", "a train passing through a countryside",
    "an old woman knitting by the fire", "a skateboarder doing a trick on a ramp",
    "a vase of sunflowers on a windowsill",
]


def _tiny_bert(tmp_path, seed=0):
  torch.manual_seed(seed)
  config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=37,
                                   max_position_embeddings=64, attn_implementation="eager")
  model = transformers.BertModel(config).eval()
  model.save_pretrained(tmp_path)
  return model


def _random_batch(seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(1, 99, size=(3, 13)).astype(np.int64)
  mask = np.ones_like(ids)
  mask[1, 9:] = 0
  mask[2, 4:] = 0
  return ids, mask


def _hf_out(model, ids, mask):
  with torch.no_grad():
    out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
  return out.last_hidden_state.numpy(), out.pooler_output.numpy()


def test_tiny_bert_matches_transformers(tmp_path):
  model = _tiny_bert(tmp_path)
  module, params = bert.load_bert(tmp_path)
  ids, mask = _random_batch()
  ours = module.apply({"params": params}, ids.astype(np.int32), mask)
  ref_h, ref_p = _hf_out(model, ids, mask)
  np.testing.assert_allclose(ours["last_hidden_state"], ref_h, atol=1e-4, rtol=0)
  np.testing.assert_allclose(ours["pooler_output"], ref_p, atol=1e-4, rtol=0)

  # The check can fail: perturbing one weight moves the outputs far beyond the tolerance.
  bad = params | {"encoder": dict(params["encoder"])}
  layer = bad["encoder"]["layer_1"]
  bad["encoder"]["layer_1"] = {**layer, "intermediate": {"dense": {
      **layer["intermediate"]["dense"], "bias": layer["intermediate"]["dense"]["bias"] + 0.05}}}
  worse = module.apply({"params": bad}, ids.astype(np.int32), mask)["last_hidden_state"]
  assert np.abs(np.asarray(worse) - ref_h).max() > 1e-3


def test_pytorch_bin_and_prefixed_checkpoint(tmp_path):
  model = _tiny_bert(tmp_path, seed=1)
  (tmp_path / "model.safetensors").unlink()
  state = {f"bert.{k}": v for k, v in model.state_dict().items()}
  state["cls.predictions.bias"] = torch.zeros(99)  # BertForMaskedLM heads are skipped
  torch.save(state, tmp_path / "pytorch_model.bin")
  module, params = bert.load_bert(tmp_path)
  ids, mask = _random_batch(1)
  ours = module.apply({"params": params}, ids.astype(np.int32), mask)["last_hidden_state"]
  np.testing.assert_allclose(ours, _hf_out(model, ids, mask)[0], atol=1e-4, rtol=0)


def test_weight_errors_name_the_parameter(tmp_path):
  _tiny_bert(tmp_path)
  cfg = json.loads((tmp_path / "config.json").read_text())
  (tmp_path / "config.json").write_text(json.dumps(cfg | {"intermediate_size": 40}))
  with pytest.raises(UserError, match=r"encoder.layer.0.intermediate.dense.bias.*\(37,\).*expects \(40,\)"):
    bert.load_bert(tmp_path)
  (tmp_path / "config.json").write_text(json.dumps(cfg | {"num_hidden_layers": 3}))
  with pytest.raises(UserError, match=r"lacks .*encoder/layer_2/"):
    bert.load_bert(tmp_path)
  (tmp_path / "model.safetensors").unlink()
  with pytest.raises(UserError, match="no model.safetensors"):
    bert.load_bert(tmp_path)
  with pytest.raises(UserError, match="does not exist"):
    embed.load_text_encoder(str(tmp_path / "nowhere"))


def test_hub_name_offline_is_a_clear_error(monkeypatch):
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
    hf_weights.resolve_model_dir("bert-base-uncased")


def _reference_minilm(model_dir, texts):
  """sentence-transformers' recipe: truncate at 256, mean over real tokens, L2 normalise."""
  tok = transformers.AutoTokenizer.from_pretrained(model_dir)
  model = transformers.BertModel.from_pretrained(model_dir).eval()
  batch = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
  with torch.no_grad():
    h = model(**batch).last_hidden_state
  m = batch["attention_mask"][..., None].float()
  v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
  return torch.nn.functional.normalize(v, dim=-1).numpy(), tok


def test_minilm_matches_pytorch_reference():
  encoder = embed.load_text_encoder()  # skips nothing: the package is a test requirement.
  assert encoder.dim == 384 and encoder.sentence == embed.SentenceConfig("mean", True, 256)
  ref, tok = _reference_minilm(embed.default_model_dir(), SENTENCES)
  ours = encoder.embed(SENTENCES)
  assert ours.dtype == np.float32 and ours.shape == (len(SENTENCES), 384)
  np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
  ids, mask = encoder.tokenizer.encode(SENTENCES)
  ref_ids = tok(SENTENCES, truncation=True, max_length=256)["input_ids"]
  for row, m, r in zip(ids, mask, ref_ids):
    assert row[m.astype(bool)].tolist() == r
  # Single texts, and the empty caption, give the same vectors as in a batch.
  np.testing.assert_allclose(encoder.embed([""])[0], ours[2], atol=1e-6)
  assert encoder.embed([]).shape == (0, 384)
  # sentence-transformers itself (when installed) agrees as well.
  try:
    import sentence_transformers  # pylint: disable=import-outside-toplevel
  except ImportError:
    sentence_transformers = None
  if sentence_transformers is not None:
    st = sentence_transformers.SentenceTransformer(str(embed.default_model_dir()), device="cpu")
    np.testing.assert_allclose(ours, st.encode(SENTENCES, batch_size=64), atol=1e-5, rtol=0)
  # The name stored in model metadata reloads the packaged copy, offline.
  assert embed.load_text_encoder(encoder.name).tokenizer.max_length == 256


def test_vocab_txt_tokenizer_matches_tokenizer_json(tmp_path):
  import shutil  # pylint: disable=import-outside-toplevel
  from jaxsemic.text.tokenize import load_tokenizer  # pylint: disable=import-outside-toplevel
  src = embed.default_model_dir()
  for name in ("vocab.txt", "tokenizer_config.json"):
    shutil.copy(src / name, tmp_path / name)
  ids_a, mask_a = load_tokenizer(src, 256).encode(SENTENCES)
  ids_b, mask_b = load_tokenizer(tmp_path, 256).encode(SENTENCES)
  np.testing.assert_array_equal(ids_a, ids_b)
  np.testing.assert_array_equal(mask_a, mask_b)
