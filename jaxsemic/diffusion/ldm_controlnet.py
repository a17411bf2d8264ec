"""DiffBIR's IRControlNet checkpoint (ldm key names) -> diffusers ControlNet names -> Flax params.

IRControlNet (DiffBIR v2, on SD 2.1-base) is the public ControlNet conditioned on a VAE latent: its first
conv takes the noisy latent and the condition latent concatenated (4 + 4 channels) and it has no pixel-hint
block. Its state dict uses the original LDM / ControlNet names; the table below renames them to diffusers'
ControlNetModel names (L = layers_per_block; input block i >= 1 is down block b = (i-1) // (L+1), position
l = (i-1) % (L+1); position L is the block's downsampler):

| ldm | diffusers |
| --- | --- |
| time_embed.0 / time_embed.2 | time_embedding.linear_1 / linear_2 |
| input_blocks.0.0 | conv_in |
| input_blocks.i.0 (l < L) | down_blocks.b.resnets.l (in_layers.0 norm1, in_layers.2 conv1, emb_layers.1 time_emb_proj, out_layers.0 norm2, out_layers.3 conv2, skip_connection conv_shortcut) |
| input_blocks.i.1 | down_blocks.b.attentions.l (transformer names are shared) |
| input_blocks.i.0.op (l = L) | down_blocks.b.downsamplers.0.conv |
| middle_block.0 / .1 / .2 | mid_block.resnets.0 / attentions.0 / resnets.1 |
| zero_convs.i.0 | controlnet_down_blocks.i |
| middle_block_out.0 | controlnet_mid_block |

The ControlNet's architecture is the SD UNet's encoder, so its config is the UNet's with
in_channels = latent + condition. DiffBIR multiplies every residual by a control scale of 1.0.
"""

import dataclasses
import os
import re

import jax.numpy as jnp
import numpy as np

from jaxsemic.diffusion.config import UNetConfig
from jaxsemic.diffusion.controlnet import ControlNetModel
from jaxsemic.diffusion.pretrained import params_from_state_dict
from jaxsemic.errors import UserError

LDM_CONTROLNET_FIXED: tuple[tuple[str, str], ...] = (
    ('time_embed.0.', 'time_embedding.linear_1.'),
    ('time_embed.2.', 'time_embedding.linear_2.'),
    ('input_blocks.0.0.', 'conv_in.'),
    ('middle_block.0.', 'mid_block.resnets.0.'),
    ('middle_block.1.', 'mid_block.attentions.0.'),
    ('middle_block.2.', 'mid_block.resnets.1.'),
    ('middle_block_out.0.', 'controlnet_mid_block.'),
)
LDM_RESNET: tuple[tuple[str, str], ...] = (
    ('in_layers.0.', 'norm1.'), ('in_layers.2.', 'conv1.'), ('emb_layers.1.', 'time_emb_proj.'),
    ('out_layers.0.', 'norm2.'), ('out_layers.3.', 'conv2.'), ('skip_connection.', 'conv_shortcut.'),
)
_INPUT = re.compile(r'input_blocks\.(\d+)\.(\d+)\.(.*)')
_DOWN = re.compile(r'down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.*)')
_ZERO = re.compile(r'zero_convs\.(\d+)\.0\.(.*)')
_CN_DOWN = re.compile(r'controlnet_down_blocks\.(\d+)\.(.*)')


def _swap(text: str, pairs: tuple[tuple[str, str], ...], reverse: bool = False) -> str:
  """Replace the first matching prefix of `text` from pairs (old -> new, or new -> old when reverse)."""
  for old, new in pairs:
    old, new = (new, old) if reverse else (old, new)
    if text.startswith(old):
      return new + text[len(old):]
  return text


def ldm_to_diffusers(key: str, layers_per_block: int) -> str:
  """One ldm ControlNet tensor name -> its diffusers ControlNetModel name (UserError if unknown)."""
  renamed = _swap(key, LDM_CONTROLNET_FIXED)
  if renamed != key:
    return _swap_resnet(renamed) if renamed.startswith('mid_block.resnets.') else renamed
  if m := _ZERO.fullmatch(key):
    return f'controlnet_down_blocks.{m[1]}.{m[2]}'
  if m := _INPUT.fullmatch(key):
    i, part, rest = int(m[1]), int(m[2]), m[3]
    b, l = divmod(i - 1, layers_per_block + 1)
    if l == layers_per_block and part == 0 and rest.startswith('op.'):
      return f'down_blocks.{b}.downsamplers.0.conv.{rest[3:]}'
    if l < layers_per_block and part == 0:
      return f'down_blocks.{b}.resnets.{l}.{_swap(rest, LDM_RESNET)}'
    if l < layers_per_block and part == 1:
      return f'down_blocks.{b}.attentions.{l}.{rest}'
  raise UserError(f'unexpected tensor {key!r} in an ldm ControlNet checkpoint')


def diffusers_to_ldm(key: str, layers_per_block: int) -> str:
  """The inverse of `ldm_to_diffusers` (to write ldm checkpoints in tests and converters)."""
  if key.startswith('mid_block.resnets.'):
    key = key[:len('mid_block.resnets.0.')] + _swap(key[len('mid_block.resnets.0.'):], LDM_RESNET, reverse=True)
  renamed = _swap(key, LDM_CONTROLNET_FIXED, reverse=True)
  if renamed != key:
    return renamed
  if m := _CN_DOWN.fullmatch(key):
    return f'zero_convs.{m[1]}.0.{m[2]}'
  if m := _DOWN.fullmatch(key):
    b, kind, l, rest = int(m[1]), m[2], int(m[3]), m[4]
    if kind == 'downsamplers':
      return f'input_blocks.{b * (layers_per_block + 1) + layers_per_block + 1}.0.op.{rest.removeprefix("conv.")}'
    i = b * (layers_per_block + 1) + l + 1
    if kind == 'resnets':
      return f'input_blocks.{i}.0.{_swap(rest, LDM_RESNET, reverse=True)}'
    return f'input_blocks.{i}.1.{rest}'
  raise UserError(f'no ldm name for diffusers tensor {key!r}')


def _swap_resnet(key: str) -> str:
  """mid_block.resnets.N.<ldm resnet name> -> diffusers resnet name."""
  head = key[:len('mid_block.resnets.0.')]
  return head + _swap(key[len(head):], LDM_RESNET)


def controlnet_config(unet_config: UNetConfig, latent_channels: int) -> UNetConfig:
  """The latent ControlNet's config: the UNet's encoder with conv_in on latent + condition channels.

  up_block_types is unused by a ControlNet; it gets the value a diffusers ControlNet config leads to, so both
  loaders build equal modules (and share compiled programs).
  """
  return dataclasses.replace(unet_config, in_channels=unet_config.in_channels + latent_channels,
                             conditioning_channels=latent_channels, up_block_types=UNetConfig.up_block_types)


def read_ldm_state_dict(path: str) -> dict[str, np.ndarray]:
  """An ldm ControlNet checkpoint (.safetensors, or .pth/.ckpt via torch) -> {ldm name: float32 array}.

  A Lightning-style {'state_dict': ...} wrapper and the 'control_model.' prefix of full ControlLDM
  checkpoints are removed.
  """
  if not os.path.isfile(path):
    raise UserError(f'no ControlNet checkpoint file at {path}')
  try:
    if path.endswith('.safetensors'):
      import safetensors.numpy  # pylint: disable=import-outside-toplevel
      state = dict(safetensors.numpy.load_file(path))
    else:
      try:
        import torch  # pylint: disable=import-outside-toplevel
      except ImportError as e:
        raise UserError(f'{path} is a PyTorch checkpoint; install torch or convert it to safetensors') from e
      state = torch.load(path, map_location='cpu', weights_only=True)
      state = state.get('state_dict', state)
      state = {k: v.float().numpy() for k, v in state.items() if hasattr(v, 'numpy')}
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except  # truncated / corrupt files
    raise UserError(f'cannot read ControlNet checkpoint {path}: {type(e).__name__}: {e}') from e
  if any(k.startswith('control_model.') for k in state):
    state = {k[len('control_model.'):]: v for k, v in state.items() if k.startswith('control_model.')}
  if any(k.startswith('input_hint_block.') for k in state):
    raise UserError(f'{path} is a pixel-hint ControlNet (input_hint_block); SEDIC needs a latent-conditioned one '
                    '(DiffBIR IRControlNet)')
  return {k: np.asarray(v, np.float32) for k, v in state.items()}


def load_ldm_controlnet(path: str, unet_config: UNetConfig, latent_channels: int = 4, dtype=jnp.float32
                        ) -> tuple[ControlNetModel, dict]:
  """(ControlNetModel('latent'), params) from an IRControlNet checkpoint; the config comes from the SD UNet."""
  module = ControlNetModel(controlnet_config(unet_config, latent_channels), 'latent', dtype=dtype)
  lpb = unet_config.layers_per_block
  state = {ldm_to_diffusers(k, lpb): v for k, v in read_ldm_state_dict(path).items()}
  return module, params_from_state_dict(module, 'controlnet', state, dtype)
