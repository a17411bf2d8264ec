"""configs/sedic_reference.py shrunk to about an hour on 2 CPU cores, from scratch (no checkpoint offline).

  python -m jaxsemic.train --config=configs/sedic_reference_cpu.py --workdir=runs/sedic_ref_cpu \
      --config.data.train_dir=../shared/data/train --config.eval.dir=../shared/data/kodak

cheng2020-attn with N = M = 64, SEDIC's lambda 0.00018 (CompressAI quality 1 / 10, SEDIC Sec. IV-A), 128-px
crops, batch 8, Adam 1e-3 (as configs/small_cpu.py) with a x0.2 drop, stopped by max_train_hours. Measures
what rate and PSNR this architecture and lambda reach on Kodak with real bits; the paper's reference image is
0.0181 bpp after fine-tuning a fully trained model (configs/sedic_reference.py). Result in docs/zoo.md.
"""

from jaxsemic.training.config import sibling_config
from jaxsemic.zoo.config import zoo_model_config

SEDIC_LMBDA = 0.0018 / 10


def get_config():
  """cheng2020-attn N=M=64 at lambda 0.00018 for ~1 h on a CPU."""
  c = sibling_config(__file__, "zoo.py", "cheng2020-attn")
  c.model = zoo_model_config("cheng2020-attn", 64, 64)
  c.lmbda = SEDIC_LMBDA
  c.batch_size = 8
  c.data.crop_size = 128
  c.data.small_images = "skip"
  c.learning_rate = 1e-3
  c.num_train_steps = 3000
  c.lr_boundaries = (2400,)
  c.lr_scales = (0.2,)
  c.max_train_hours = 1.0
  c.log_every = 50
  c.checkpoint_every = 200
  c.eval.real_bpp = True
  return c
