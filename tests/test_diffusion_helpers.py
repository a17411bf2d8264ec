"""Shared helpers of the diffusion parity tests: tiny diffusers configs, PyTorch -> NHWC, weight loading."""

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from jaxsemic.diffusion.pretrained import params_from_state_dict  # noqa: E402

TINY_UNET = dict(
    sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
    down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'), up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'),
    cross_attention_dim=24, attention_head_dim=4, norm_num_groups=8)


def randomize(model, seed: int = 0, std: float = 0.1):
  """Add noise to every parameter (so zero-initialised convs are not trivially equal) and set eval mode."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for p in model.parameters():
      p.add_(std * torch.randn(p.shape, generator=gen))
  return model.eval()


def nhwc(t) -> np.ndarray:
  """torch NCHW tensor -> numpy NHWC."""
  return t.detach().numpy().transpose(0, 2, 3, 1)


def nchw(a) -> np.ndarray:
  """NHWC array -> numpy NCHW."""
  return np.asarray(a).transpose(0, 3, 1, 2)


def flax_params(module, kind: str, torch_model):
  """Import a torch model's state dict into `module` (rename + transpose + validate)."""
  return params_from_state_dict(module, kind, torch_model.state_dict())


def perturbed(params, path: tuple[str, ...], delta: float = 1e-2):
  """A copy of params with one leaf shifted by delta (to show a parity test can fail)."""
  import jax  # pylint: disable=import-outside-toplevel
  def bump(p, leaf):
    return leaf + delta if tuple(k.key for k in p) == path else leaf
  return jax.tree_util.tree_map_with_path(bump, params)
