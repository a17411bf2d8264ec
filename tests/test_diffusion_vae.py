"""AutoencoderKL encode/decode parity with diffusers (fp32, tiny random config), incl. legacy names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_diffusion_helpers import flax_params, nchw, nhwc, perturbed, randomize, torch

diffusers = pytest.importorskip('diffusers')

from jaxsemic.diffusion.config import VAEConfig  # noqa: E402
from jaxsemic.diffusion.pretrained import params_from_state_dict  # noqa: E402
from jaxsemic.diffusion.vae import AutoencoderKL, image_to_latent, latent_to_image  # noqa: E402

TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32),
                down_block_types=('DownEncoderBlock2D',) * 2, up_block_types=('UpDecoderBlock2D',) * 2,
                layers_per_block=1, norm_num_groups=8, sample_size=16)


@pytest.fixture(scope='module')
def vae_pair():
  ref = randomize(diffusers.AutoencoderKL(**TINY_VAE), seed=3)
  module = AutoencoderKL(VAEConfig.from_diffusers(dict(ref.config)))
  return ref, module, flax_params(module, 'vae', ref)


def test_vae_encode_decode_match_diffusers(vae_pair):
  ref, module, params = vae_pair
  x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
  with torch.no_grad():
    dist = ref.encode(x).latent_dist
    z = dist.mean
    image = ref.decode(z).sample
  encode = jax.jit(lambda p, im: module.apply({'params': p}, im, method=AutoencoderKL.encode))
  mean, logvar = encode(params, jnp.asarray(nhwc(x)))
  np.testing.assert_allclose(nchw(mean), z.numpy(), atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(nchw(logvar), dist.logvar.numpy(), atol=1e-4, rtol=1e-4)
  decoded = module.apply({'params': params}, jnp.asarray(nhwc(z)), method=AutoencoderKL.decode)
  np.testing.assert_allclose(nchw(decoded), image.numpy(), atol=1e-4, rtol=1e-4)
  # Scaled-latent helpers invert each other's scaling.
  latent = image_to_latent(module, params, jnp.asarray(nhwc(x)))
  np.testing.assert_allclose(np.asarray(latent), nhwc(z) * ref.config.scaling_factor, atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(nchw(latent_to_image(module, params, latent)), image.numpy(), atol=1e-4, rtol=1e-4)
  # The comparison can fail: shifting the mid-block attention's value bias changes the latent.
  bad, _ = encode(perturbed(params, ('encoder', 'mid_block', 'attentions_0', 'to_v', 'bias'), 0.05),
                  jnp.asarray(nhwc(x)))
  assert np.abs(nchw(bad) - z.numpy()).max() > 1e-3


def test_vae_legacy_attention_names_load(vae_pair):
  ref, module, params = vae_pair
  legacy = {}
  for key, value in ref.state_dict().items():
    for new, old in (('to_q', 'query'), ('to_k', 'key'), ('to_v', 'value'), ('to_out.0', 'proj_attn')):
      key = key.replace(f'.attentions.0.{new}.', f'.attentions.0.{old}.')
    legacy[key] = value[..., None, None] if 'query.weight' in key else value  # old 1x1-conv layout too
  loaded = params_from_state_dict(module, 'vae', legacy)
  jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, params)
