"""SELIC as trained in the paper (Sec. V-A): N = 128, M = 320, batch 8, 256x256 crops, Adam.

  python -m jaxsemic.train --config=configs/selic.py --workdir=runs/selic_0075 \
      --config.data.train_dir=DATA --config.data.text_cache=DATA/text.safetensors --config.lmbda=0.0075

The paper trains 160 epochs on CLIC + LIU4K (lr 1e-4, then 1e-5 for the last 30 epochs), one model per
λ in {0.0016, 0.0032, 0.0075, 0.015, 0.03, 0.045, 0.06}. Epochs are converted to steps once, here, from
TRAIN_IMAGES (our assumption for CLIC 2020 train (1,633) + LIU4K train (1,600)); set
--config.num_train_steps / --config.lr_boundaries for another corpus. Expected: Kodak curve close to the
paper's SELIC curve (Table I, Fig. 3) after the full schedule.
"""

from jaxsemic.models.config import default_model_config
from jaxsemic.training.config import base_config, steps_for_epochs

TRAIN_IMAGES = 3233
EPOCHS = 160
LR_DROP_EPOCH = 130  # lr x 0.1 for the last 30 epochs


def get_config():
  """The paper's training recipe for the default λ."""
  c = base_config()
  c.model = default_model_config()
  c.lmbda = 0.0075
  c.batch_size = 8
  c.data.crop_size = 256
  c.data.small_images = "skip"
  c.data.caption_dropout = 0.1
  c.data.worker_count = 4
  c.learning_rate = 1e-4
  c.num_train_steps = steps_for_epochs(EPOCHS, TRAIN_IMAGES, c.batch_size)  # 64,660
  c.lr_boundaries = (steps_for_epochs(LR_DROP_EPOCH, TRAIN_IMAGES, c.batch_size),)  # 52,536
  c.lr_scales = (0.1,)
  c.log_every = 100
  c.checkpoint_every = 2000
  c.eval_every = 5000
  return c
