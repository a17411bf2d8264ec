"""UNet2DConditionModel parity with diffusers (fp32, tiny random configs) and weight-import errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_diffusion_helpers import TINY_UNET, flax_params, nchw, nhwc, perturbed, randomize, torch

diffusers = pytest.importorskip('diffusers')

from jaxsemic.diffusion.config import UNetConfig  # noqa: E402
from jaxsemic.diffusion.unet import UNet2DConditionModel  # noqa: E402
from jaxsemic.diffusion.weights import convert_state_dict  # noqa: E402
from jaxsemic.errors import UserError  # noqa: E402

SD2_LIKE = {**TINY_UNET, 'use_linear_projection': True, 'attention_head_dim': (2, 4),
            'transformer_layers_per_block': 2, 'cross_attention_dim': 16}


def _run_both(config: dict, seed: int):
  """(torch output NCHW, our module, our params, inputs) for one random config."""
  ref_model = randomize(diffusers.UNet2DConditionModel(**config), seed)
  gen = torch.Generator().manual_seed(seed)
  x = torch.randn(2, 4, 16, 16, generator=gen)
  ctx = torch.randn(2, 7, config['cross_attention_dim'], generator=gen)
  t = torch.tensor([3.0, 801.0])
  with torch.no_grad():
    ref = ref_model(x, t, ctx).sample.numpy()
  module = UNet2DConditionModel(UNetConfig.from_diffusers(dict(ref_model.config)))
  params = flax_params(module, 'unet', ref_model)
  inputs = (jnp.asarray(nhwc(x)), jnp.asarray(t.numpy()), jnp.asarray(ctx.numpy()))
  return ref, module, params, inputs


@pytest.fixture(scope='module', params=['sd1-conv-proj', 'sd2-linear-proj'])
def case(request):
  return _run_both(TINY_UNET if request.param == 'sd1-conv-proj' else SD2_LIKE, seed=1)


def test_unet_matches_diffusers(case):
  ref, module, params, inputs = case
  apply = jax.jit(module.apply)
  out = nchw(apply({'params': params}, *inputs))
  np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)
  # The comparison can fail: one shifted bias in a cross-attention output projection breaks it.
  path = ('up_blocks_1', 'attentions_0', 'transformer_blocks_0', 'attn2', 'to_out_0', 'bias')
  bad = nchw(apply({'params': perturbed(params, path)}, *inputs))
  assert np.abs(bad - ref).max() > 1e-3


def test_unet_bf16_runs_close(case, request):
  if 'linear' in request.node.callspec.id:
    pytest.skip('bf16 is checked once, on the conv-projection config')
  ref, module, params, inputs = case
  out = jax.jit(UNet2DConditionModel(module.config, dtype=jnp.bfloat16).apply)({"params": params}, *inputs)
  assert out.dtype == jnp.bfloat16
  rel = np.abs(nchw(out.astype(jnp.float32)) - ref).max() / np.abs(ref).max()
  assert rel < 5e-2


def test_weight_errors_name_the_tensor():
  ref_model = diffusers.UNet2DConditionModel(**TINY_UNET)
  module = UNet2DConditionModel(UNetConfig.from_diffusers(dict(ref_model.config)))
  from jaxsemic.diffusion.pretrained import abstract_params  # pylint: disable=import-outside-toplevel
  abstract = abstract_params(module, 'unet')
  state = {k: v.numpy() for k, v in ref_model.state_dict().items()}
  missing = dict(state)
  del missing['mid_block.attentions.0.proj_in.weight']
  with pytest.raises(UserError, match=r"lacks tensor 'mid_block\.attentions\.0\.proj_in\.weight'"):
    convert_state_dict(missing, abstract, 'unet')
  wrong = {**state, 'conv_in.weight': np.zeros((32, 5, 3, 3), np.float32)}
  with pytest.raises(UserError, match=r"tensor 'conv_in\.weight' has shape \(32, 5, 3, 3\)"):
    convert_state_dict(wrong, abstract, 'unet')
  extra = {**state, 'down_blocks.0.attentions.0.bogus.weight': np.zeros((3,), np.float32)}
  with pytest.raises(UserError, match='unexpected tensor'):
    convert_state_dict(extra, abstract, 'unet')
