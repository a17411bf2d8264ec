"""Loading a diffusers-format directory tree written by save_pretrained (safetensors and .bin)."""

import json

import jax
import numpy as np
import pytest

from test_diffusion_helpers import TINY_UNET, flax_params, randomize

diffusers = pytest.importorskip('diffusers')

from jaxsemic.diffusion import pretrained  # noqa: E402
from jaxsemic.errors import UserError  # noqa: E402

TINY_VAE = dict(block_out_channels=(8, 16), down_block_types=('DownEncoderBlock2D',) * 2,
                up_block_types=('UpDecoderBlock2D',) * 2, layers_per_block=1, norm_num_groups=4, latent_channels=4)
TINY_CN = {k: v for k, v in TINY_UNET.items() if k not in ('up_block_types', 'out_channels', 'sample_size')}


@pytest.fixture(scope='module')
def pipeline_dir(tmp_path_factory):
  """A tiny SD-style tree: unet/ and vae/ as safetensors, controlnet/ as .bin, scheduler/ json."""
  root = tmp_path_factory.mktemp('tiny-sd')
  models = {'unet': randomize(diffusers.UNet2DConditionModel(**TINY_UNET), 7),
            'vae': randomize(diffusers.AutoencoderKL(**TINY_VAE), 8),
            'controlnet': randomize(diffusers.ControlNetModel(**TINY_CN, conditioning_embedding_out_channels=(8, 8)), 9)}
  for name, model in models.items():
    model.save_pretrained(root / name, safe_serialization=name != 'controlnet')
  diffusers.DDIMScheduler(beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.012, steps_offset=1,
                          prediction_type='v_prediction').save_pretrained(root / 'scheduler')
  return root, models


def _assert_same(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_load_components_from_directory(pipeline_dir):
  root, models = pipeline_dir
  assert (root / 'unet' / 'diffusion_pytorch_model.safetensors').is_file()
  assert (root / 'controlnet' / 'diffusion_pytorch_model.bin').is_file()
  unet, unet_params = pretrained.load_unet(str(root))
  _assert_same(unet_params, flax_params(unet, 'unet', models['unet']))
  vae, vae_params = pretrained.load_vae(str(root))
  _assert_same(vae_params, flax_params(vae, 'vae', models['vae']))
  assert vae.config.scaling_factor == models['vae'].config.scaling_factor
  cn, cn_params = pretrained.load_controlnet(str(root / 'controlnet'))  # a flat component folder works too
  _assert_same(cn_params, flax_params(cn, 'controlnet', models['controlnet']))
  sched = pretrained.load_scheduler_config(str(root))
  assert sched.prediction_type == 'v_prediction' and sched.steps_offset == 1
  assert sched.beta_schedule == 'scaled_linear'


def test_missing_or_broken_files_give_one_line_errors(pipeline_dir, tmp_path):
  root, _ = pipeline_dir
  with pytest.raises(UserError, match='no diffusers model directory'):
    pretrained.load_unet(str(tmp_path / 'nope'))
  with pytest.raises(UserError, match='has no config.json'):
    pretrained.load_unet(str(tmp_path))
  (tmp_path / 'unet').mkdir()
  (tmp_path / 'unet' / 'config.json').write_text((root / 'unet' / 'config.json').read_text())
  with pytest.raises(UserError, match='no weights in'):
    pretrained.load_unet(str(tmp_path))
  (tmp_path / 'unet' / 'diffusion_pytorch_model.safetensors').write_bytes(b'not a safetensors file')
  with pytest.raises(UserError, match='cannot read weights'):
    pretrained.load_unet(str(tmp_path))
  config = json.loads((root / 'unet' / 'config.json').read_text())
  config['class_embed_type'] = 'timestep'
  (tmp_path / 'unet' / 'config.json').write_text(json.dumps(config))
  with pytest.raises(UserError, match='unsupported diffusers config: class_embed_type'):
    pretrained.load_unet(str(tmp_path))


def test_mismatched_config_names_the_tensor(pipeline_dir, tmp_path):
  root, _ = pipeline_dir
  (tmp_path / 'unet').mkdir()
  config = json.loads((root / 'unet' / 'config.json').read_text())
  config['cross_attention_dim'] = 20  # the checkpoint's attn2.to_k is 24 wide
  (tmp_path / 'unet' / 'config.json').write_text(json.dumps(config))
  (tmp_path / 'unet' / 'diffusion_pytorch_model.safetensors').symlink_to(
      root / 'unet' / 'diffusion_pytorch_model.safetensors')
  with pytest.raises(UserError, match=r"unet: tensor '.*attn2\.to_k\.weight' has shape \(32, 24\)"):
    pretrained.load_unet(str(tmp_path))


def test_hub_name_offline_is_a_clear_error(monkeypatch):
  monkeypatch.setenv('HF_HUB_OFFLINE', '1')
  with pytest.raises(UserError, match="'nobody/no-such-model' is not a local directory and (cannot be downloaded|huggingface_hub)"):
    pretrained.load_unet('nobody/no-such-model')


def test_text_encoder_folder_goes_through_the_clip_port(tmp_path):
  transformers = pytest.importorskip('transformers')
  vocab = {'<|startoftext|>': 0, '<|endoftext|>': 1, **{c: i + 2 for i, c in enumerate('abc')},
           **{c + '</w>': i + 5 for i, c in enumerate('abc')}}
  config = transformers.CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=24,
                                       num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=8,
                                       bos_token_id=0, eos_token_id=1, pad_token_id=1)
  transformers.CLIPTextModel(config).save_pretrained(tmp_path / 'text_encoder')
  transformers.CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(tmp_path / 'tokenizer')
  module, params, _ = pretrained.load_text_encoder(str(tmp_path))
  assert jax.tree_util.tree_leaves(params) and module.config.vocab_size == len(vocab)
  with pytest.raises(UserError):
    pretrained.load_text_encoder(str(tmp_path / 'tokenizer'))
