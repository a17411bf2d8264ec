"""A tiny SELIC that trains in a few minutes on 2 CPU cores (the README's main-job command).

  python -m jaxsemic.train --config=configs/tiny.py --workdir=runs/tiny

With no data folder it trains on the photos bundled with scikit-image (captions and their
all-MiniLM-L6-v2 vectors ship in jaxsemic/data/), then exports the model to runs/tiny/model and
compresses + decompresses scikit-image's astronaut, printing bytes, bpp and PSNR. Expect a blurry but
recognisable reconstruction (measured: 0.26 bpp, 20.7 dB on the astronaut) — a smoke test of the pipeline,
not a useful codec. Point it at real data with --config.data.train_dir=DIR (and a text cache).
"""

from jaxsemic.training.config import sibling_config


def get_config():
  """configs/selic.py shrunk: N=32, M=48, 4 slices, 128px crops, batch 4, a few hundred steps."""
  c = sibling_config(__file__, "selic.py")
  c.model.N = 32
  c.model.M = 48
  c.model.num_slices = 4
  c.model.charm_hidden = (32, 16)
  c.lmbda = 0.0130
  c.batch_size = 4
  c.data.crop_size = 128
  c.data.small_images = "upscale"
  c.data.caption_dropout = 0.1
  c.data.worker_count = 0
  c.learning_rate = 1e-3
  c.num_train_steps = 400
  c.lr_boundaries = (300,)
  c.lr_scales = (0.1,)
  c.grad_clip = 1.0
  c.log_every = 25
  c.checkpoint_every = 100
  c.eval_every = 0
  c.demo.enabled = True
  return c
