"""ControlNet parity with diffusers: the pixel-hint ControlNetModel and the latent-conditioned variant.

The latent-conditioned (DiffBIR IRControlNet-style) reference is composed here from the parts of a
diffusers ControlNetModel whose conv_in takes latent + condition channels.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_diffusion_helpers import TINY_UNET, flax_params, nchw, nhwc, perturbed, randomize, torch

diffusers = pytest.importorskip('diffusers')

from jaxsemic.diffusion.config import UNetConfig  # noqa: E402
from jaxsemic.diffusion.controlnet import ControlNetModel  # noqa: E402
from jaxsemic.diffusion.unet import UNet2DConditionModel  # noqa: E402

TINY_CONTROLNET = {k: v for k, v in TINY_UNET.items() if k not in ('up_block_types', 'out_channels', 'sample_size')}
TINY_CONTROLNET['conditioning_embedding_out_channels'] = (8, 16, 16, 32)


def latent_controlnet_reference(cn, sample, t, ctx, cond, scale):
  """IRControlNet forward from diffusers parts: conv_in on [z, c], down/mid blocks, zero convs."""
  emb = cn.time_embedding(cn.time_proj(t.expand(sample.shape[0])))
  h = cn.conv_in(torch.cat([sample, cond], dim=1))
  skips = [h]
  for block in cn.down_blocks:
    if getattr(block, 'has_cross_attention', False):
      h, res = block(hidden_states=h, temb=emb, encoder_hidden_states=ctx)
    else:
      h, res = block(hidden_states=h, temb=emb)
    skips.extend(res)
  h = cn.mid_block(h, emb, encoder_hidden_states=ctx)
  down = [zero(s) * scale for s, zero in zip(skips, cn.controlnet_down_blocks)]
  return down, cn.controlnet_mid_block(h) * scale


def _inputs(seed, hint_shape):
  gen = torch.Generator().manual_seed(seed)
  x = torch.randn(2, 4, 16, 16, generator=gen)
  ctx = torch.randn(2, 5, TINY_UNET['cross_attention_dim'], generator=gen)
  hint = torch.rand(*hint_shape, generator=gen)
  return x, torch.tensor([7.0, 600.0]), ctx, hint


def _assert_residuals_close(ours, ref):
  down, mid = ours
  ref_down, ref_mid = ref
  assert len(down) == len(ref_down)
  for a, b in zip(down, ref_down):
    np.testing.assert_allclose(nchw(a), b.detach().numpy(), atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(nchw(mid), ref_mid.detach().numpy(), atol=1e-4, rtol=1e-4)


def test_pixel_controlnet_and_unet_match_diffusers():
  ref_cn = randomize(diffusers.ControlNetModel(**TINY_CONTROLNET), seed=4)
  ref_unet = randomize(diffusers.UNet2DConditionModel(**TINY_UNET), seed=5)
  x, t, ctx, hint = _inputs(0, (2, 3, 128, 128))
  with torch.no_grad():
    ref_down, ref_mid = ref_cn(x, t, ctx, controlnet_cond=hint, conditioning_scale=0.7, return_dict=False)
    ref_out = ref_unet(x, t, ctx, down_block_additional_residuals=ref_down,
                       mid_block_additional_residual=ref_mid).sample.numpy()
  cn = ControlNetModel(UNetConfig.from_diffusers(dict(ref_cn.config)), 'pixel')
  unet = UNet2DConditionModel(UNetConfig.from_diffusers(dict(ref_unet.config)))
  cn_params, unet_params = flax_params(cn, 'controlnet', ref_cn), flax_params(unet, 'unet', ref_unet)

  @jax.jit
  def step(cn_params, scale, x, t, ctx, hint):
    down, mid = cn.apply({'params': cn_params}, x, t, ctx, hint, scale)
    return (down, mid), unet.apply({'params': unet_params}, x, t, ctx, down, mid)

  args = (jnp.asarray(nhwc(x)), jnp.asarray(t.numpy()), jnp.asarray(ctx.numpy()), jnp.asarray(nhwc(hint)))
  residuals, out = step(cn_params, 0.7, *args)
  _assert_residuals_close(residuals, (ref_down, ref_mid))
  np.testing.assert_allclose(nchw(out), ref_out, atol=1e-4, rtol=1e-4)
  # Control scale is a per-call (traced) argument: scale 0 leaves the plain UNet output.
  _, plain = step(cn_params, 0.0, *args)
  with torch.no_grad():
    np.testing.assert_allclose(nchw(plain), ref_unet(x, t, ctx).sample.numpy(), atol=1e-4, rtol=1e-4)
  # The comparison can fail: one shifted weight in the hint encoder breaks it.
  bad, _ = step(perturbed(cn_params, ('controlnet_cond_embedding', 'blocks_1', 'bias')), 0.7, *args)
  assert max(np.abs(nchw(a) - b.numpy()).max() for a, b in zip(bad[0], ref_down)) > 1e-3


def test_latent_controlnet_matches_reference_from_diffusers_parts():
  config = {**TINY_CONTROLNET, 'in_channels': 8, 'conditioning_channels': 4}
  ref_cn = randomize(diffusers.ControlNetModel(**config), seed=6)
  del ref_cn.controlnet_cond_embedding  # the latent variant has no pixel-hint encoder
  x, t, ctx, cond = _inputs(1, (2, 4, 16, 16))
  with torch.no_grad():
    ref = latent_controlnet_reference(ref_cn, x, t, ctx, cond, 1.3)
  cn = ControlNetModel(UNetConfig.from_diffusers(dict(ref_cn.config)), 'latent')
  params = flax_params(cn, 'controlnet', ref_cn)
  apply = jax.jit(cn.apply)
  args = (jnp.asarray(nhwc(x)), jnp.asarray(t.numpy()), jnp.asarray(ctx.numpy()), jnp.asarray(nhwc(cond)))
  _assert_residuals_close(apply({'params': params}, *args, 1.3), ref)
  bad_down, _ = apply({'params': perturbed(params, ('conv_in', 'kernel'))}, *args, 1.3)
  assert np.abs(nchw(bad_down[0]) - ref[0][0].numpy()).max() > 1e-3
