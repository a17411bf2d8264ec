"""The models the SEDIC decoder runs: SD UNet, latent ControlNet, VAE, CLIP text encoder, tokenizer, scheduler.

`load_components` reads them from diffusers folders (the ControlNet also from DiffBIR's IRControlNet
checkpoint in ldm key names); `tiny_components` builds random tiny models in code (tests, `--tiny-random`),
`sd21_random_components` random models of SD 2.1-base + IRControlNet's sizes (timing the decoder without weights).
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any

import jax
import jax.numpy as jnp

from jaxsemic.diffusion import pretrained
from jaxsemic.diffusion.config import UNetConfig, VAEConfig
from jaxsemic.diffusion.controlnet import ControlNetModel
from jaxsemic.diffusion.ldm_controlnet import controlnet_config
from jaxsemic.diffusion.schedulers import SchedulerConfig
from jaxsemic.diffusion.unet import UNet2DConditionModel
from jaxsemic.diffusion.vae import AutoencoderKL
from jaxsemic.errors import UserError
from jaxsemic.text.clip_text import CLIPTextConfig, CLIPTextModel
from jaxsemic.text.tokenize import Tokenizer, clip_bpe_from_vocab

CONTROLNET_FORMATS = ('diffusers', 'ldm')


@dataclasses.dataclass(frozen=True)
class Components:
  """Modules (hashable configs) and their parameters {'unet', 'controlnet', 'vae', 'text_encoder'}."""
  unet: UNet2DConditionModel
  controlnet: ControlNetModel
  vae: AutoencoderKL
  text_encoder: CLIPTextModel
  tokenizer: Tokenizer
  scheduler: SchedulerConfig
  params: dict[str, Any]

  @property
  def text_length(self) -> int:
    """Token positions of the text encoder (77 for CLIP)."""
    return self.text_encoder.config.max_position_embeddings

  @property
  def vae_factor(self) -> int:
    """Image pixels per latent cell along each side (8 for SD)."""
    return 2 ** (len(self.vae.config.block_out_channels) - 1)

  @property
  def latent_multiple(self) -> int:
    """Latent sides must be multiples of this (the UNet's downsampling)."""
    return 2 ** (len(self.unet.config.block_out_channels) - 1)


def check_components(unet: UNet2DConditionModel, controlnet: ControlNetModel, vae: AutoencoderKL,
                     text_encoder: CLIPTextModel) -> None:
  """One-line errors when the parts do not fit together (channels, text width, condition type)."""
  u, c = unet.config, controlnet.config
  if controlnet.conditioning != 'latent':
    raise UserError('SEDIC needs a latent-conditioned ControlNet (condition = VAE latent of the image)')
  latent = vae.config.latent_channels
  if u.in_channels != latent or c.in_channels != latent + c.conditioning_channels or c.conditioning_channels != latent:
    raise UserError(f'channel mismatch: UNet takes {u.in_channels}, ControlNet {c.in_channels} '
                    f'(= latent + condition {c.conditioning_channels}), VAE latent has {latent}')
  if c.block_out_channels != u.block_out_channels:
    raise UserError(f'ControlNet blocks {c.block_out_channels} do not match the UNet {u.block_out_channels}')
  width = text_encoder.config.blocks.hidden_size
  if u.cross_attention_dim != width or c.cross_attention_dim != width:
    raise UserError(f'text width {width} does not match cross-attention width {u.cross_attention_dim}')


def load_components(sd_dir: str, controlnet_dir: str, controlnet_format: str = 'diffusers',
                    dtype=jnp.float32) -> Components:
  """SD (diffusers pipeline folder: unet/, vae/, text_encoder/, tokenizer/, scheduler/) + a latent ControlNet.

  controlnet_format 'diffusers': a diffusers ControlNet folder whose conv_in takes latent + condition;
  'ldm': a DiffBIR IRControlNet checkpoint file (ldm key names), its config taken from the SD UNet.
  """
  if controlnet_format not in CONTROLNET_FORMATS:
    raise UserError(f'controlnet format must be one of {", ".join(CONTROLNET_FORMATS)}, got {controlnet_format!r}')
  unet, unet_params = pretrained.load_unet(sd_dir, dtype=dtype)
  vae, vae_params = pretrained.load_vae(sd_dir, dtype=dtype)
  clip, clip_params, tokenizer = pretrained.load_text_encoder(sd_dir)
  scheduler = pretrained.load_scheduler_config(sd_dir)
  if controlnet_format == 'diffusers':
    cn, cn_params = pretrained.load_controlnet(controlnet_dir, dtype=dtype, conditioning='latent')
  else:
    from jaxsemic.diffusion.ldm_controlnet import load_ldm_controlnet  # pylint: disable=import-outside-toplevel
    cn, cn_params = load_ldm_controlnet(controlnet_dir, unet.config, vae.config.latent_channels, dtype=dtype)
  check_components(unet, cn, vae, clip)
  params = {'unet': unet_params, 'controlnet': cn_params, 'vae': vae_params, 'text_encoder': clip_params}
  return Components(unet, cn, vae, clip, tokenizer, scheduler, params)


# ---- tiny random models (diffusers / transformers config dicts, so tests can build the PyTorch twins) ----

# Attention only below full resolution (mid block, level 1): self-attention over every latent cell would make a
# Kodak-size smoke decode take minutes on a CPU. up_blocks.1 is the first cross-attention up block, as in SD.
TINY_UNET = dict(
    sample_size=16, in_channels=4, out_channels=4, block_out_channels=(16, 32, 32), layers_per_block=1,
    down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'),
    up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'),
    cross_attention_dim=32, attention_head_dim=2, norm_num_groups=8)
# The ControlNet mirrors the UNet's encoder; conv_in takes the noisy latent and the condition latent (4 + 4).
TINY_CONTROLNET = {**{k: v for k, v in TINY_UNET.items() if k not in ('up_block_types', 'out_channels', 'sample_size')},
                   'in_channels': 8, 'conditioning_channels': 4}
# Four levels: 8x downsampling, as SD's VAE, so the latent grid is the image / 8.
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16, 16),
                down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4,
                layers_per_block=1, norm_num_groups=8, sample_size=32)
TINY_CLIP = dict(vocab_size=0, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_act='quick_gelu')
TINY_MERGES = (('r', 'e'), ('re', 'd</w>'), ('d', 'o'), ('do', 'o'), ('doo', 'r</w>'), ('c', 'a'), ('ca', 't</w>'),
               ('a', 'n'), ('an', 'd</w>'), ('t', 'h'), ('th', 'e</w>'))


def tiny_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
  """A character-level CLIP BPE vocabulary with a few merges (no files)."""
  vocab = {'<|startoftext|>': 0, '<|endoftext|>': 1}
  for ch in string.ascii_lowercase + string.digits + '.,!?;:\'"()-':
    vocab[ch] = len(vocab)
    vocab[ch + '</w>'] = len(vocab)
  for a, b in TINY_MERGES:
    vocab.setdefault(a + b, len(vocab))
  return vocab, list(TINY_MERGES)


def tiny_tokenizer() -> Tokenizer:
  """The tiny CLIP tokenizer (pads with the end token, as SD 1.x)."""
  vocab, merges = tiny_vocab()
  return Tokenizer(clip_bpe_from_vocab(vocab, merges), TINY_CLIP['max_position_embeddings'], vocab['<|endoftext|>'])


def tiny_clip_config() -> dict[str, Any]:
  """TINY_CLIP with the tiny vocabulary's size."""
  return {**TINY_CLIP, 'vocab_size': len(tiny_vocab()[0])}


def tiny_modules() -> tuple[UNet2DConditionModel, ControlNetModel, AutoencoderKL, CLIPTextModel]:
  """The tiny modules (no parameters)."""
  return (UNet2DConditionModel(UNetConfig.from_diffusers(TINY_UNET)),
          ControlNetModel(UNetConfig.from_diffusers(TINY_CONTROLNET), 'latent'),
          AutoencoderKL(VAEConfig.from_diffusers(TINY_VAE)),
          CLIPTextModel(CLIPTextConfig.from_dict(tiny_clip_config())))


def random_components(modules: tuple[UNet2DConditionModel, ControlNetModel, AutoencoderKL, CLIPTextModel],
                      tokenizer: Tokenizer, seed: int = 0, params: dict[str, Any] | None = None) -> Components:
  """`modules` (UNet, ControlNet, VAE, CLIP) with `params`, or seeded random ones (meaningless outputs, real
  code paths)."""
  unet, cn, vae, clip = modules
  if params is None:
    ids = jnp.zeros((1, 4), jnp.int32)
    params = {'unet': pretrained.random_params(unet, 'unet', seed),
              'controlnet': pretrained.random_params(cn, 'controlnet', seed + 1),
              'vae': pretrained.random_params(vae, 'vae', seed + 2),
              'text_encoder': pretrained.fill_random(
                  jax.eval_shape(lambda: clip.init(jax.random.key(0), ids))['params'], seed + 3)}
  check_components(unet, cn, vae, clip)
  return Components(unet, cn, vae, clip, tokenizer, SchedulerConfig(), params)


def tiny_components(seed: int = 0, params: dict[str, Any] | None = None) -> Components:
  """Random tiny SD + latent ControlNet + VAE + CLIP (meaningless outputs, real code paths); or given params."""
  return random_components(tiny_modules(), tiny_tokenizer(), seed, params)


# ---- SD 2.1-base sizes (the diffusers configs of stabilityai/stable-diffusion-2-1-base; DiffBIR v2's IRControlNet
# is the UNet's encoder on latent + condition latent) ----

SD21_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
    up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3,
    cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True, norm_num_groups=32)
SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
              down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4,
              layers_per_block=2, norm_num_groups=32, sample_size=512)
SD21_TEXT = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                 num_attention_heads=16, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
                 pad_token_id=1, hidden_act='gelu', projection_dim=512)


def sd21_random_components(seed: int = 0) -> Components:
  """SD 2.1-base UNet, IRControlNet, SD VAE and the 23-layer OpenCLIP-H text encoder with random parameters.

  The tokenizer is the tiny character-level one (CLIP's BPE vocabulary is a download): the text encoder sees
  other token ids than SD's, at the same cost. ~6.6 GB of float32 parameters.
  """
  unet = UNet2DConditionModel(UNetConfig.from_diffusers(SD21_UNET))
  cn = ControlNetModel(controlnet_config(unet.config, SD_VAE['latent_channels']), 'latent')
  modules = (unet, cn, AutoencoderKL(VAEConfig.from_diffusers(SD_VAE)),
             CLIPTextModel(CLIPTextConfig.from_dict(SD21_TEXT)))
  return random_components(modules, tiny_tokenizer(), seed)
