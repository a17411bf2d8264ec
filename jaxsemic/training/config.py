"""The training config's fields and defaults; the files in configs/ start from `base_config()`."""

from __future__ import annotations

import importlib.util
import os

import ml_collections

from jaxsemic.models.config import default_model_config

# The paper's rate points (Sec. V-A); one model per λ.
PAPER_LAMBDAS = (0.0016, 0.0032, 0.0075, 0.015, 0.03, 0.045, 0.06)


def base_config() -> ml_collections.ConfigDict:
  """Every field the trainer reads, with SELIC's model and paper-like defaults."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = default_model_config()
  c.lmbda = 0.0075  # loss = bpp + λ·255²·MSE
  c.batch_size = 8  # global, over all devices and processes

  c.num_train_steps = 1000
  c.learning_rate = 1e-4
  c.lr_boundaries = ()  # steps at which the rate is multiplied by the matching lr_scales entry
  c.lr_scales = ()
  c.grad_clip = 1.0  # global-norm clipping; 0 disables
  # float32 | bfloat16: the transforms' layers in bfloat16 (jaxsemic/layers/precision.py); parameters, optimizer
  # state, entropy models and loss stay float32, and the codec (compress/decompress) is float32 regardless.
  c.compute_dtype = "float32"
  # Gradient accumulation within a step: the batch on each device is split into this many equal parts whose
  # gradients are averaged (one optimizer update, a noise key per part). 0 = auto: on CPU, parts of at most
  # 2 crops of 256² (activations stay in cache; jaxsemic/training/step.py), elsewhere 1.
  c.microbatches = 0
  c.max_nonfinite_steps = 5  # stop after this many NaN/inf steps in a row
  c.max_train_hours = 0.0  # > 0: stop (with a checkpoint) once this much wall time has passed
  c.dry_run = False  # build mesh, shardings, state shapes, data shard, compile one step; print; no training
  c.init_from = ""  # a model directory (`jaxsemic export` / `import-compressai`) to fine-tune from

  c.log_every = 50
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  c.eval_every = 0  # also every this many steps (0 = only at the end; needs eval.dir)

  c.data = ml_collections.ConfigDict()
  c.data.train_dir = ""  # "" = the built-in scikit-image photos
  c.data.crop_size = 256
  c.data.small_images = "upscale"  # upscale | skip (images with a side < crop_size)
  c.data.flip = True
  c.data.text_cache = ""  # text vectors per image (`jaxsemic embed-text`); needed if fusion != none
  c.data.caption_dropout = 0.0  # fraction of examples trained with the empty caption
  c.data.worker_count = 1  # grain worker processes (0 = decode in the training process)
  c.data.worker_buffer_size = 2

  c.eval = ml_collections.ConfigDict()
  c.eval.dir = ""  # held-out folder, e.g. ../shared/data/kodak
  c.eval.max_images = 0  # 0 = all
  c.eval.text_cache = ""
  c.eval.real_bpp = True  # also compress/decompress through jaxsemic.codec (real bits)

  c.demo = ml_collections.ConfigDict()
  c.demo.enabled = False  # after training: export to workdir/model, compress+decompress one image
  c.demo.image = ""  # "" = scikit-image's astronaut
  return c


def steps_for_epochs(epochs: float, num_images: int, batch_size: int) -> int:
  """Converts a duration in epochs over `num_images` images to optimizer steps."""
  return int(round(epochs * num_images / batch_size))


def sibling_config(this_file: str, name: str, *args) -> ml_collections.ConfigDict:
  """get_config(*args) of another config file in the same folder (config variants start from a base)."""
  path = os.path.join(os.path.dirname(os.path.abspath(this_file)), name)
  spec = importlib.util.spec_from_file_location(f"jaxsemic_config_{name[:-3]}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(*args)
