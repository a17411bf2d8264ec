"""A small no-text SELIC for about an hour on 2 shared CPU cores, evaluated on Kodak.

  nice -n 10 python -m jaxsemic.train --config=configs/small_cpu.py --workdir=runs/small_cpu \
      --config.data.train_dir=../shared/data/train --config.eval.dir=../shared/data/kodak

N=32, M=64, 128-px crops (smaller images skipped), batch 8, Adam 1e-3 with a x0.2 drop for the last
fifth, stopped after max_train_hours. Fusion 'none' (no text cache needed). This is a pipeline check:
measured after ~1 h (1,766 steps): Kodak 0.311 bpp, 25.39 dB, 0.77 dB below JPEG at that rate.
"""

from jaxsemic.training.config import sibling_config


def get_config():
  """configs/baseline.py shrunk to train for an hour on a CPU."""
  c = sibling_config(__file__, "baseline.py")
  c.model.N = 32
  c.model.M = 64
  c.model.num_slices = 4
  c.model.charm_hidden = (48, 32)
  c.lmbda = 0.0130
  c.batch_size = 8
  c.data.crop_size = 128
  c.data.small_images = "skip"
  c.data.worker_count = 1
  c.learning_rate = 1e-3
  c.num_train_steps = 2000
  c.lr_boundaries = (1600,)
  c.lr_scales = (0.2,)
  c.max_train_hours = 1.0
  c.log_every = 50
  c.checkpoint_every = 200
  c.eval_every = 0
  c.eval.real_bpp = True
  return c
