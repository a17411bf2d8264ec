"""The SD 2.1-base sizes of `components.sd21_random_components` are the real models' (abstract shapes only)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.diffusion import pretrained
from jaxsemic.diffusion.config import UNetConfig, VAEConfig
from jaxsemic.diffusion.ldm_controlnet import controlnet_config
from jaxsemic.diffusion.unet import UNet2DConditionModel
from jaxsemic.diffusion.vae import AutoencoderKL
from jaxsemic.sedic import components as C
from jaxsemic.text.clip_text import CLIPTextConfig, CLIPTextModel


def _count(tree) -> int:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


def test_unet_and_vae_have_sd21_base_parameter_counts():
  """diffusers' stable-diffusion-2-1-base: UNet 865,910,724 and VAE 83,653,863 parameters."""
  unet = UNet2DConditionModel(UNetConfig.from_diffusers(C.SD21_UNET))
  assert _count(pretrained.abstract_params(unet, 'unet')) == 865_910_724
  assert _count(pretrained.abstract_params(AutoencoderKL(VAEConfig.from_diffusers(C.SD_VAE)), 'vae')) == 83_653_863
  cn = controlnet_config(unet.config, C.SD_VAE['latent_channels'])
  assert (cn.in_channels, cn.conditioning_channels) == (8, 4)  # IRControlNet: noisy latent + condition latent


def test_text_encoder_is_the_23_layer_open_clip_h():
  """Embeddings + 23 pre-norm blocks of width 1024 (MLP 4096) + the final norm, counted from the architecture."""
  clip = CLIPTextModel(CLIPTextConfig.from_dict(C.SD21_TEXT))
  params = jax.eval_shape(lambda: clip.init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))['params']
  d, ff = 1024, 4096
  block = 4 * (d * d + d) + 2 * 2 * d + (d * ff + ff) + (ff * d + d)
  assert _count(params) == 49408 * d + 77 * d + 23 * block + 2 * d
