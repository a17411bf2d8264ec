"""Cross-attention capture by layer name, and dE/dz through the maps (SEDIC eqs. 2-3) vs finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsemic.diffusion.config import UNetConfig
from jaxsemic.diffusion.guidance import attention_energy, guided_latent, resize_mask, token_weights
from jaxsemic.diffusion.pretrained import random_params
from jaxsemic.diffusion.unet import UNet2DConditionModel, cross_attention_maps

# One resolution level keeps the compiled graphs (forward and backward) small.
CONFIG = UNetConfig(block_out_channels=(16,), down_block_types=('CrossAttnDownBlock2D',),
                    up_block_types=('CrossAttnUpBlock2D',), layers_per_block=1, heads=(2,),
                    transformer_layers_per_block=(1,), cross_attention_dim=12, norm_num_groups=4)
LAYER = 'up_blocks.0.attentions.1.transformer_blocks.0.attn2'
TOKENS = [1, 3]


def _setup(dtype):
  unet = UNet2DConditionModel(CONFIG, dtype=dtype)
  k1, k2 = jax.random.split(jax.random.key(0))
  z = jax.random.normal(k1, (1, 8, 8, 4), dtype)
  ctx = jax.random.normal(k2, (1, 6, 12), dtype)
  params = random_params(unet, 'unet', seed=3, dtype=dtype)
  mask = jnp.zeros((1, 8, 8)).at[:, 2:6, 1:5].set(1.0)
  return unet, params, z, ctx, mask


def test_capture_by_name_shapes_and_rows_sum_to_one():
  unet, params, z, ctx, _ = _setup(jnp.float32)
  maps = jax.jit(lambda z: cross_attention_maps(unet, params, z, 500, ctx)[1])(z)
  assert sorted(maps) == sorted([
      'down_blocks.0.attentions.0.transformer_blocks.0.attn2', 'mid_block.attentions.0.transformer_blocks.0.attn2',
      'up_blocks.0.attentions.0.transformer_blocks.0.attn2', LAYER])  # self-attention is not captured
  assert maps[LAYER].shape == (1, 2, 64, 6)
  np.testing.assert_allclose(np.asarray(maps[LAYER].sum(-1)), 1.0, rtol=1e-5)
  with pytest.raises(KeyError, match='no cross-attention layer named'):
    jax.eval_shape(lambda z: cross_attention_maps(unet, params, z, 500, ctx, ['up_blocks.0.attn2']), z)


def test_energy_gradient_matches_finite_difference_and_guidance_lowers_it():
  with jax.enable_x64(True):
    unet, params, z, ctx, mask = _setup(jnp.float64)
    eta = 0.5
    weights = token_weights(TOKENS, ctx.shape[1])
    z1, e0, _ = jax.jit(lambda z: guided_latent(unet, params, z, 400, ctx, mask, weights, [LAYER], eta))(z)
    grad = (z - z1) / eta  # eq. 3 moved the latent by -eta * dE/dz
    assert np.all(np.isfinite(np.asarray(grad))) and np.abs(np.asarray(grad)).max() > 0

    @jax.jit
    def energies(latents):  # independent forward passes, batched: no autodiff involved
      ctxs = jnp.repeat(ctx, latents.shape[0], axis=0)
      _, maps = cross_attention_maps(unet, params, latents, 400, ctxs, [LAYER])
      return attention_energy(maps[LAYER], jnp.repeat(mask, latents.shape[0], axis=0), TOKENS)

    direction = jax.random.normal(jax.random.key(1), z.shape, jnp.float64)
    eps = 1e-5
    e_plus, e_minus, e_after, e_again = energies(jnp.concatenate([z + eps * direction, z - eps * direction, z1, z]))
    fd = (e_plus - e_minus) / (2 * eps)
    np.testing.assert_allclose(float(jnp.vdot(grad, direction)), float(fd), rtol=1e-6)
    np.testing.assert_allclose(float(e_again), float(e0[0]), rtol=1e-12)
    assert float(e_after) < float(e0[0])  # one guidance step lowers the energy


def test_guided_latent_wants_token_weights_not_indices():
  unet, params, z, ctx, mask = _setup(jnp.float32)
  guide = lambda tokens: jax.eval_shape(lambda z: guided_latent(unet, params, z, 400, ctx, mask, tokens, [LAYER], 0.5), z)
  assert guide(token_weights(TOKENS, ctx.shape[1]))[1].shape == (1,)
  with pytest.raises(AssertionError):
    guide(jnp.asarray(TOKENS))


def test_resize_mask_keeps_aspect():
  assert resize_mask(jnp.ones((1, 32, 64)), 4 * 8, 0.5).shape == (1, 4, 8)


def test_blocked_attention_equals_plain_with_gradient():
  from jaxsemic.diffusion.attention import attend, attend_blocked, attend_fast  # pylint: disable=import-outside-toplevel
  q, k, v = jax.random.normal(jax.random.key(5), (3, 2, 256, 2, 8))
  k, v = k[:, :96], v[:, :96]  # fewer keys than queries: dK, dV accumulate over the query chunks
  weights = jnp.arange(1.0, 9.0)  # a non-symmetric loss, so that rowsum(dO * O) matters
  value_and_grad = lambda f: jax.jit(jax.value_and_grad(lambda *qkv: (f(*qkv) ** 2 * weights).sum(), argnums=(0, 1, 2)))
  e_plain, g_plain = value_and_grad(lambda q, k, v: attend(q, k, v)[0])(q, k, v)
  for fn in (lambda q, k, v: attend_blocked(q, k, v, 64), attend_fast):
    e, grads = value_and_grad(fn)(q, k, v)
    np.testing.assert_allclose(e, e_plain, rtol=1e-5)
    for g, g_ref in zip(grads, g_plain):
      np.testing.assert_allclose(g, g_ref, atol=1e-4 * np.abs(g_ref).max())


@pytest.mark.parametrize('size,height,channels', [(1, 5, 4), (3, 4, 24), (3, 5, 4)])
def test_same_conv_gradients_equal_lax(size, height, channels):
  """1x1 and 3x3 with h*w <= C_out run as matmuls (forward and input gradient), the last case as XLA's."""
  from jaxsemic.diffusion.resnet import lax_conv, same_conv  # pylint: disable=import-outside-toplevel
  x, kernel, dy = (jax.random.normal(jax.random.key(i), shape) for i, shape in enumerate(
      [(2, height, 5, 6), (size, size, 6, channels), (2, height, 5, channels)]))
  ours, ref = (jax.jit(lambda x, k, f=f: (f(x, k),) + jax.vjp(f, x, k)[1](dy))(x, kernel) for f in (same_conv, lax_conv))
  for g, g_ref in zip(ours, ref):  # output, input gradient, kernel gradient
    np.testing.assert_allclose(g, g_ref, atol=1e-5 * np.abs(g_ref).max())
