"""Architecture configs of the SD UNet / ControlNet / VAE, read from diffusers `config.json` dicts."""

import dataclasses
from typing import Any

from jaxsemic.errors import UserError

_UNSUPPORTED_IF_SET = ('class_embed_type', 'addition_embed_type', 'encoder_hid_dim', 'time_cond_proj_dim',
                       'num_class_embeds', 'projection_class_embeddings_input_dim')


def _tuple(value: Any, n: int) -> tuple:
  """Broadcast an int (or None) to an n-tuple; pass sequences through as tuples."""
  return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


def _check(cond: bool, what: str) -> None:
  """Raise a one-line UserError for an unsupported config value."""
  if not cond:
    raise UserError(f'unsupported diffusers config: {what}')


@dataclasses.dataclass(frozen=True)
class UNetConfig:
  """The fields of diffusers' UNet2DConditionModel / ControlNetModel config that SD 1.x/2.x use."""
  in_channels: int = 4
  out_channels: int = 4
  block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
  down_block_types: tuple[str, ...] = ('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',)
  up_block_types: tuple[str, ...] = ('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3
  layers_per_block: int = 2
  heads: tuple[int, ...] = (8, 8, 8, 8)
  transformer_layers_per_block: tuple[int, ...] = (1, 1, 1, 1)
  cross_attention_dim: int = 768
  use_linear_projection: bool = False
  norm_num_groups: int = 32
  norm_eps: float = 1e-5
  flip_sin_to_cos: bool = True
  freq_shift: float = 0.0
  # ControlNet only: pixel-hint encoder channels; conditioning_channels is the hint's channel count.
  conditioning_channels: int = 3
  conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256)

  @property
  def hint_factor(self) -> int:
    """How much larger the ControlNet pixel hint is than the latent (8 for SD)."""
    return 2 ** (len(self.conditioning_embedding_out_channels) - 1)

  @property
  def time_embed_dim(self) -> int:
    """Width of the timestep embedding MLP."""
    return 4 * self.block_out_channels[0]

  @classmethod
  def from_diffusers(cls, cfg: dict[str, Any]) -> 'UNetConfig':
    """Build from a diffusers UNet2DConditionModel or ControlNetModel config dict."""
    n = len(cfg.get('block_out_channels', cls.block_out_channels))
    for key in _UNSUPPORTED_IF_SET:
      _check(cfg.get(key) is None, f'{key}={cfg.get(key)!r}')
    _check(cfg.get('mid_block_type', 'UNetMidBlock2DCrossAttn') == 'UNetMidBlock2DCrossAttn', 'mid_block_type')
    _check(cfg.get('time_embedding_type', 'positional') == 'positional', 'time_embedding_type')
    _check(cfg.get('act_fn', 'silu') == 'silu', 'act_fn')
    _check(not cfg.get('only_cross_attention', False), 'only_cross_attention')
    _check(not cfg.get('dual_cross_attention', False), 'dual_cross_attention')
    _check(cfg.get('resnet_time_scale_shift', 'default') == 'default', 'resnet_time_scale_shift')
    _check(cfg.get('global_pool_conditions', False) is False, 'global_pool_conditions')
    # diffusers' naming quirk: `attention_head_dim` holds the number of heads when
    # `num_attention_heads` is unset (the case for every SD 1.x/2.x config).
    heads = cfg.get('num_attention_heads') or cfg.get('attention_head_dim', 8)
    fields = dict(
        in_channels=cfg.get('in_channels', 4), out_channels=cfg.get('out_channels', 4),
        block_out_channels=tuple(cfg.get('block_out_channels', cls.block_out_channels)),
        down_block_types=tuple(cfg.get('down_block_types', cls.down_block_types)),
        up_block_types=tuple(cfg.get('up_block_types', cls.up_block_types)),
        layers_per_block=cfg.get('layers_per_block', 2), heads=_tuple(heads, n),
        transformer_layers_per_block=_tuple(cfg.get('transformer_layers_per_block', 1), n),
        cross_attention_dim=cfg.get('cross_attention_dim', 768),
        use_linear_projection=bool(cfg.get('use_linear_projection', False)),
        norm_num_groups=cfg.get('norm_num_groups', 32), norm_eps=cfg.get('norm_eps', 1e-5),
        flip_sin_to_cos=cfg.get('flip_sin_to_cos', True), freq_shift=cfg.get('freq_shift', 0),
        conditioning_channels=cfg.get('conditioning_channels', 3),
        conditioning_embedding_out_channels=tuple(
            cfg.get('conditioning_embedding_out_channels', cls.conditioning_embedding_out_channels)))
    config = cls(**fields)
    config.validate()
    return config

  def validate(self) -> None:
    """Check block types and per-block tuple lengths."""
    n = len(self.block_out_channels)
    _check(all(t in ('CrossAttnDownBlock2D', 'DownBlock2D') for t in self.down_block_types),
           f'down_block_types={self.down_block_types}')
    _check(all(t in ('CrossAttnUpBlock2D', 'UpBlock2D') for t in self.up_block_types),
           f'up_block_types={self.up_block_types}')
    for name in ('down_block_types', 'heads', 'transformer_layers_per_block'):
      _check(len(getattr(self, name)) == n, f'{name} needs {n} entries')
    _check(all(isinstance(t, int) for t in self.transformer_layers_per_block),
           'nested transformer_layers_per_block')


@dataclasses.dataclass(frozen=True)
class VAEConfig:
  """The fields of diffusers' AutoencoderKL config that SD uses."""
  in_channels: int = 3
  out_channels: int = 3
  latent_channels: int = 4
  block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
  layers_per_block: int = 2
  norm_num_groups: int = 32
  scaling_factor: float = 0.18215
  shift_factor: float = 0.0
  use_quant_conv: bool = True
  use_post_quant_conv: bool = True

  @classmethod
  def from_diffusers(cls, cfg: dict[str, Any]) -> 'VAEConfig':
    """Build from a diffusers AutoencoderKL config dict."""
    _check(all(t == 'DownEncoderBlock2D' for t in cfg.get('down_block_types', ['DownEncoderBlock2D'])),
           'down_block_types')
    _check(all(t == 'UpDecoderBlock2D' for t in cfg.get('up_block_types', ['UpDecoderBlock2D'])),
           'up_block_types')
    _check(cfg.get('act_fn', 'silu') == 'silu', 'act_fn')
    _check(cfg.get('mid_block_add_attention', True), 'mid_block_add_attention=False')
    return cls(in_channels=cfg.get('in_channels', 3), out_channels=cfg.get('out_channels', 3),
               latent_channels=cfg.get('latent_channels', 4),
               block_out_channels=tuple(cfg.get('block_out_channels', (64,))),
               layers_per_block=cfg.get('layers_per_block', 1), norm_num_groups=cfg.get('norm_num_groups', 32),
               scaling_factor=cfg.get('scaling_factor', 0.18215), shift_factor=cfg.get('shift_factor') or 0.0,
               use_quant_conv=cfg.get('use_quant_conv', True),
               use_post_quant_conv=cfg.get('use_post_quant_conv', True))
