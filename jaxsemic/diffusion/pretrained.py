"""Load SD components from a diffusers-format directory (unet/, controlnet/, vae/, scheduler/) or hub name.

Each component folder holds `config.json` and `diffusion_pytorch_model[.variant].safetensors` (or `.bin`,
or a sharded `*.index.json`). Weights go through `jaxsemic.diffusion.weights.convert_state_dict`, which
checks every tensor against the `jax.eval_shape` parameter tree of the config's module.
"""

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.diffusion.config import UNetConfig, VAEConfig
from jaxsemic.diffusion.controlnet import ControlNetModel
from jaxsemic.diffusion.schedulers import SchedulerConfig
from jaxsemic.diffusion.unet import UNet2DConditionModel
from jaxsemic.diffusion.vae import AutoencoderKL
from jaxsemic.diffusion.weights import convert_state_dict
from jaxsemic.errors import UserError

WEIGHTS_NAME = 'diffusion_pytorch_model'
HUB_PATTERNS = ('*.json', '*.txt', '*.safetensors')


def abstract_params(module, kind: str):
  """The `jax.eval_shape` parameter tree of a UNet / ControlNet / VAE module (no FLOPs, no memory)."""
  if kind == 'vae':
    f = 2 ** (len(module.config.block_out_channels) - 1)
    args = (jnp.zeros((1, f, f, module.config.in_channels)),)
  else:
    cfg = module.config
    f = 2 ** (len(cfg.block_out_channels) - 1)
    channels = cfg.in_channels
    if kind == 'controlnet' and module.conditioning == 'latent':
      channels -= cfg.conditioning_channels
    args = (jnp.zeros((1, f, f, channels)), jnp.zeros((1,)), jnp.zeros((1, 1, cfg.cross_attention_dim)))
    if kind == 'controlnet':
      cond = ((1, f, f, cfg.conditioning_channels) if module.conditioning == 'latent'
              else (1, cfg.hint_factor * f, cfg.hint_factor * f, cfg.conditioning_channels))
      args += (jnp.zeros(cond),)
  return jax.eval_shape(lambda: module.init(jax.random.key(0), *args))['params']


def random_params(module, kind: str, seed: int = 0, dtype=jnp.float32):
  """Random parameters from the abstract tree with NumPy (fast: no compiled `init`); for tests/benchmarks."""
  return fill_random(abstract_params(module, kind), seed, dtype)


def fill_random(abstract, seed: int = 0, dtype=jnp.float32):
  """Random values for an abstract parameter tree: kernels / embeddings ~ N(0, 1/fan_in), biases small, norm
  scales near 1."""
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = path[-1].key
    if name in ('kernel', 'embedding'):
      fan_in = int(np.prod(leaf.shape[:-1]))
      return jnp.asarray(rng.standard_normal(leaf.shape, np.float32) / np.sqrt(fan_in), dtype)
    base = 1.0 if name == 'scale' else 0.0
    return jnp.asarray(base + 0.1 * rng.standard_normal(leaf.shape, np.float32), dtype)

  return jax.tree_util.tree_map_with_path(fill, abstract)


def params_from_state_dict(module, kind: str, state: dict[str, Any], dtype=jnp.float32):
  """A diffusers state dict (numpy or torch tensors) -> validated Flax params of `module`."""
  state = {k: v.float().numpy() if hasattr(v, 'numpy') else np.asarray(v) for k, v in state.items()}
  params = convert_state_dict(state, abstract_params(module, kind), kind)
  return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)


def resolve(path_or_name: str, *subfolders: str | None, variant: str | None = None) -> str:
  """A local diffusers directory, or a hub repo id whose `subfolders` are downloaded (online only).

  From the hub only configs, tokenizer files and safetensors weights are fetched (not .bin, not other
  variants), which keeps an SD download to the files these loaders read.
  """
  if os.path.isdir(path_or_name):
    return path_or_name
  if os.path.exists(path_or_name) or path_or_name.count('/') != 1 or path_or_name.startswith(('.', '/')):
    raise UserError(f'no diffusers model directory at {path_or_name!r}')
  try:
    import huggingface_hub  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(f'{path_or_name!r} is not a local directory and huggingface_hub is not installed') from e
  # A pipeline repo's component folders, or the files of a flat component repo (e.g. a ControlNet).
  stem = f'{WEIGHTS_NAME}.{variant}' if variant else WEIGHTS_NAME
  files = ('*.json', '*.txt', f'{stem}.safetensors', 'model.safetensors')
  patterns = [f'{sub}/{f}' for sub in subfolders if sub for f in files] + [f for f in files if f != '*.txt']
  try:
    return huggingface_hub.snapshot_download(path_or_name, allow_patterns=patterns)
  except Exception as e:  # pylint: disable=broad-except  # offline, unknown repo, gated repo, ...
    raise UserError(f'{path_or_name!r} is not a local directory and cannot be downloaded from the Hugging Face '
                    f'hub ({type(e).__name__}: offline?); pass a local diffusers directory') from e


def _folder(root: str, subfolder: str | None) -> str:
  """The component folder: root/subfolder, or root itself when it is a flat component repo."""
  has_config = lambda d: any(os.path.isfile(os.path.join(d, n)) for n in ('config.json', 'scheduler_config.json'))
  for folder in ([os.path.join(root, subfolder)] if subfolder else []) + [root]:
    if has_config(folder):
      return folder
  where = os.path.join(root, subfolder) if subfolder else root
  raise UserError(f'{where} has no config.json (expected a diffusers {subfolder or "model"} folder)')


def read_config(folder: str, name: str = 'config.json') -> dict[str, Any]:
  """Read a diffusers JSON config, with a one-line error when unreadable."""
  path = os.path.join(folder, name)
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f'cannot read {path}: {e}') from e


def read_state_dict(folder: str, variant: str | None = None) -> dict[str, np.ndarray]:
  """Read `diffusion_pytorch_model[.variant]` as safetensors (preferred) or PyTorch .bin, sharded or not."""
  stem = f'{WEIGHTS_NAME}.{variant}' if variant else WEIGHTS_NAME
  for ext in ('safetensors', 'bin'):
    single = os.path.join(folder, f'{stem}.{ext}')
    index = single + '.index.json'
    if os.path.isfile(single):
      return _read_file(single)
    if os.path.isfile(index):
      shards = sorted(set(read_config(folder, os.path.basename(index))['weight_map'].values()))
      state = {}
      for shard in shards:
        state.update(_read_file(os.path.join(folder, shard)))
      return state
  raise UserError(f'no weights in {folder}: expected {stem}.safetensors or {stem}.bin')


def _read_file(path: str) -> dict[str, np.ndarray]:
  """One safetensors or .bin file -> {name: float32 array}."""
  try:
    if path.endswith('.safetensors'):
      import safetensors.numpy  # pylint: disable=import-outside-toplevel
      return {k: v.astype(np.float32) for k, v in safetensors.numpy.load_file(path).items()}
    try:
      import torch  # pylint: disable=import-outside-toplevel
    except ImportError as e:
      raise UserError(f'{path} is a PyTorch .bin file; install torch or convert it to safetensors') from e
    state = torch.load(path, map_location='cpu', weights_only=True)
    return {k: v.float().numpy() for k, v in state.items()}
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except  # truncated / corrupt files
    raise UserError(f'cannot read weights {path}: {type(e).__name__}: {e}') from e


def load_unet(path_or_name: str, subfolder: str | None = 'unet', dtype=jnp.float32, variant: str | None = None
              ) -> tuple[UNet2DConditionModel, Any]:
  """(UNet2DConditionModel, params) from a diffusers `unet/` folder."""
  folder = _folder(resolve(path_or_name, subfolder, variant=variant), subfolder)
  module = UNet2DConditionModel(UNetConfig.from_diffusers(read_config(folder)), dtype=dtype)
  return module, params_from_state_dict(module, 'unet', read_state_dict(folder, variant))


def load_controlnet(path_or_name: str, subfolder: str | None = 'controlnet', dtype=jnp.float32,
                    conditioning: str = 'pixel', variant: str | None = None) -> tuple[ControlNetModel, Any]:
  """(ControlNetModel, params) from a diffusers `controlnet/` folder; `conditioning` 'pixel' or 'latent'."""
  folder = _folder(resolve(path_or_name, subfolder, variant=variant), subfolder)
  module = ControlNetModel(UNetConfig.from_diffusers(read_config(folder)), conditioning, dtype=dtype)
  return module, params_from_state_dict(module, 'controlnet', read_state_dict(folder, variant))


def load_vae(path_or_name: str, subfolder: str | None = 'vae', dtype=jnp.float32, variant: str | None = None
             ) -> tuple[AutoencoderKL, Any]:
  """(AutoencoderKL, params) from a diffusers `vae/` folder."""
  folder = _folder(resolve(path_or_name, subfolder, variant=variant), subfolder)
  module = AutoencoderKL(VAEConfig.from_diffusers(read_config(folder)), dtype=dtype)
  return module, params_from_state_dict(module, 'vae', read_state_dict(folder, variant))


def load_scheduler_config(path_or_name: str, subfolder: str | None = 'scheduler', **overrides) -> SchedulerConfig:
  """SchedulerConfig from a diffusers `scheduler/scheduler_config.json` (any SD scheduler class)."""
  folder = _folder(resolve(path_or_name, subfolder), subfolder)
  return SchedulerConfig.from_diffusers(read_config(folder, 'scheduler_config.json'), **overrides)



def load_text_encoder(path_or_name: str, subfolder: str = 'text_encoder'):
  """(CLIPTextModel, params, tokenizer) from a pipeline's `text_encoder/` and `tokenizer/` via jaxsemic.text."""
  from jaxsemic.text.clip_text import load_clip_text  # pylint: disable=import-outside-toplevel
  folder = os.path.join(resolve(path_or_name, subfolder, 'tokenizer'), subfolder)
  if not os.path.isdir(folder):
    raise UserError(f'no text encoder folder at {folder}')
  return load_clip_text(folder)
