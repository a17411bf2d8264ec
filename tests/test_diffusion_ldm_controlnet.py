"""DiffBIR IRControlNet (ldm names) -> diffusers -> Flax: inverse-map round trip with every shape checked."""

import re

import jax
import numpy as np
import pytest
import safetensors.numpy

from jaxsemic.diffusion import ldm_controlnet as L
from jaxsemic.diffusion.config import UNetConfig
from jaxsemic.diffusion.controlnet import ControlNetModel
from jaxsemic.diffusion.pretrained import random_params
from jaxsemic.diffusion.weights import diffusers_name
from jaxsemic.errors import UserError

# SD's layout in small: 3 levels, 2 layers per block (so the index arithmetic is exercised), linear projections.
UNET = UNetConfig(block_out_channels=(16, 32, 32), down_block_types=('CrossAttnDownBlock2D',) * 2 + ('DownBlock2D',),
                  up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 2, layers_per_block=2, heads=(2, 2, 2),
                  transformer_layers_per_block=(1, 1, 1), cross_attention_dim=24, use_linear_projection=True,
                  norm_num_groups=8)
LDM_KEY = re.compile(r'(time_embed\.[02]|input_blocks\.\d+\.[01]|zero_convs\.\d+\.0|middle_block\.[012]'
                     r'|middle_block_out\.0)\..+')


def _to_torch_layout(value: np.ndarray) -> np.ndarray:
  """Flax HWIO conv / (in, out) dense -> PyTorch OIHW / (out, in)."""
  if value.ndim == 4:
    value = value.transpose(3, 2, 0, 1)
  elif value.ndim == 2:
    value = value.T
  return np.ascontiguousarray(value)  # safetensors writes the buffer as is


def _ldm_state(params) -> dict[str, np.ndarray]:
  """Flax params -> diffusers names -> ldm names, in PyTorch layout (what DiffBIR's file holds)."""
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  diffusers = {diffusers_name(tuple(p.key for p in path)): _to_torch_layout(np.asarray(v)) for path, v in leaves}
  return {L.diffusers_to_ldm(k, UNET.layers_per_block): v for k, v in diffusers.items()}, diffusers


def test_ldm_checkpoint_round_trip(tmp_path):
  module = ControlNetModel(L.controlnet_config(UNET, 4), 'latent')
  params = random_params(module, 'controlnet', seed=1)
  ldm, diffusers = _ldm_state(params)
  assert len(ldm) == len(diffusers)  # the inverse map is one to one
  assert all(LDM_KEY.fullmatch(k) for k in ldm), [k for k in ldm if not LDM_KEY.fullmatch(k)]
  # Shapes of the DiffBIR layout: conv_in on 4 + 4 channels, 13-style zero convs (here 3 levels x 3 + 1 = 9).
  assert ldm['input_blocks.0.0.weight'].shape == (16, 8, 3, 3)
  assert sorted(int(k.split('.')[1]) for k in ldm if k.startswith('zero_convs.') and k.endswith('weight')) == list(range(9))
  assert ldm['input_blocks.3.0.op.weight'].shape == (16, 16, 3, 3)  # level 0's downsampler
  assert ldm['input_blocks.4.0.skip_connection.weight'].shape == (32, 16, 1, 1)
  assert ldm['input_blocks.4.1.proj_in.weight'].shape == (32, 32)  # linear projection (SD 2.x)
  assert ldm['middle_block.1.transformer_blocks.0.attn2.to_k.weight'].shape == (32, 24)
  assert ldm['middle_block_out.0.weight'].shape == (32, 32, 1, 1)
  for k, v in ldm.items():
    assert L.ldm_to_diffusers(k, UNET.layers_per_block) in diffusers and diffusers[
        L.ldm_to_diffusers(k, UNET.layers_per_block)].shape == v.shape

  path = tmp_path / 'irc.safetensors'
  safetensors.numpy.save_file({f'control_model.{k}': v for k, v in ldm.items()} | {'other.weight': np.zeros(1)},
                              str(path))
  loaded_module, loaded = L.load_ldm_controlnet(str(path), UNET, 4)
  assert loaded_module == module
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, params)  # values and shapes, every tensor

  # A shape error names the tensor; a pixel ControlNet is refused.
  bad = dict(ldm, **{'zero_convs.5.0.weight': np.zeros((16, 16, 1, 1), np.float32)})
  safetensors.numpy.save_file(bad, str(tmp_path / 'bad.safetensors'))
  with pytest.raises(UserError, match='zero_convs.5.0.weight|controlnet_down_blocks.5.weight'):
    L.load_ldm_controlnet(str(tmp_path / 'bad.safetensors'), UNET, 4)
  safetensors.numpy.save_file(dict(ldm, **{'input_hint_block.0.weight': np.zeros(1)}), str(tmp_path / 'px.safetensors'))
  with pytest.raises(UserError, match='pixel-hint ControlNet'):
    L.load_ldm_controlnet(str(tmp_path / 'px.safetensors'), UNET, 4)
  with pytest.raises(UserError, match='unexpected tensor'):
    L.ldm_to_diffusers('output_blocks.0.0.in_layers.0.weight', 2)


def test_names_agree_with_diffusers_converter():
  """diffusers' own ldm ControlNet conversion gives the same names (fed a dummy pixel-hint block it requires)."""
  pytest.importorskip('torch')
  convert = pytest.importorskip('diffusers.pipelines.stable_diffusion.convert_from_ckpt')
  module = ControlNetModel(L.controlnet_config(UNET, 4), 'latent')
  ldm, _ = _ldm_state(random_params(module, 'controlnet', seed=2))
  hint = {f'input_hint_block.{i}.{p}': np.zeros(1) for i in range(0, 16, 2) for p in ('weight', 'bias')}
  config = {'layers_per_block': UNET.layers_per_block, 'block_out_channels': UNET.block_out_channels,
            'down_block_types': UNET.down_block_types, 'up_block_types': UNET.up_block_types,
            'use_linear_projection': True, 'class_embed_type': None, 'addition_embed_type': None}
  theirs = convert.convert_ldm_unet_checkpoint(dict(ldm, **hint), config, controlnet=True,
                                               skip_extract_state_dict=True)
  theirs = {k: v for k, v in theirs.items() if not k.startswith('controlnet_cond_embedding.')}
  ours = {L.ldm_to_diffusers(k, UNET.layers_per_block): v for k, v in ldm.items()}
  assert sorted(theirs) == sorted(ours)
  for k, v in ours.items():
    np.testing.assert_array_equal(np.asarray(theirs[k]).reshape(v.shape), v, err_msg=k)
