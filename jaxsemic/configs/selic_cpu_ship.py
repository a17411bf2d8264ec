"""The shipped default SELIC models (issue 13): a text-guided SELIC trained on 2 CPU cores in two phases.

  # phase 1: one trunk at the middle rate
  python -m jaxsemic.train --config=configs/selic_cpu_ship.py:trunk --workdir=runs/ship_trunk \
      --config.data.train_dir=DATA --config.data.text_cache=DATA/text.safetensors
  jaxsemic export --workdir runs/ship_trunk --out runs/ship_trunk/model
  # phase 2: one fine-tune per rate point, started from the trunk (q1 = lowest rate)
  python -m jaxsemic.train --config=configs/selic_cpu_ship.py:q1 --workdir=runs/ship_q1 \
      --config.data.train_dir=DATA --config.data.text_cache=DATA/text.safetensors \
      --config.init_from=runs/ship_trunk/model

DATA = coco_mini + flickr8k_thumbs + nine tenths of imagenet_sample (every tenth file, sorted by name, from
the fifth on, held out for evaluation); text vectors from `jaxsemic embed-text` over the COCO and Flickr8k
captions (ImageNet photos train with the empty caption). N = 48, M = 96 keeps each model under 16 MiB of
float32 parameters. The measured runs and Kodak numbers are in jaxsemic/shipped/MODEL_CARD.md.
"""

from jaxsemic.training.config import sibling_config

# λ per rate point (loss = bpp + λ·255²·MSE); the trunk trains at the middle one.
LAMBDAS = {"q1": 0.004, "q2": 0.009, "q3": 0.016}


def get_config(arg: str = "trunk"):
  """arg: 'trunk' (phase 1) or one of LAMBDAS (phase 2 fine-tune, needs --config.init_from)."""
  if arg != "trunk" and arg not in LAMBDAS:
    raise ValueError(f"configs/selic_cpu_ship.py: unknown variant {arg!r}; use trunk, {', '.join(LAMBDAS)}")
  c = sibling_config(__file__, "small_cpu_text.py")
  c.model.N = 48
  c.model.M = 96
  c.model.num_slices = 4
  c.model.charm_hidden = (64, 48)
  c.batch_size = 8
  c.data.crop_size = 128
  c.data.small_images = "skip"
  c.data.caption_dropout = 0.1
  c.data.worker_count = 1
  c.grad_clip = 1.0
  c.log_every = 100
  c.keep_checkpoints = 2
  c.eval_every = 0
  if arg == "trunk":
    c.lmbda = LAMBDAS["q2"]
    c.learning_rate = 1e-3
    c.num_train_steps = 100_000  # bounded by max_train_hours
    c.lr_boundaries = ()
    c.lr_scales = ()
    c.max_train_hours = 1.0
    c.checkpoint_every = 500
  else:
    c.lmbda = LAMBDAS[arg]
    c.learning_rate = 3e-4  # fresh Adam from the trunk's weights
    c.num_train_steps = 900
    c.lr_boundaries = (600,)
    c.lr_scales = (0.2,)
    c.max_train_hours = 0.85
    c.checkpoint_every = 300
  return c
