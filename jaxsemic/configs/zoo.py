"""Training configs of the CompressAI zoo architectures (jaxsemic/zoo), one per architecture via the argument.

  python -m jaxsemic.train --config=configs/zoo.py:cheng2020-attn --workdir=runs/cheng_q3
  python -m jaxsemic.train --config=configs/zoo.py:bmshj2018-hyperprior,small --workdir=runs/hp_tiny

`ARCH` is one of bmshj2018-factorized, bmshj2018-hyperprior, mbt2018-mean, mbt2018, cheng2020-anchor,
cheng2020-attn; `,small` shrinks the model and run to a few-minute CPU smoke test (N=32, 128px crops). The
recipe is CompressAI's examples/train.py: 256x256 crops, batch 16, Adam 1e-4, gradient clipping at 1, MSE
at quality 3 (lambda 0.0067 for the hyperprior family, 0.0067 here for all). The architectures read no
text (fusion is none). Expected after a full schedule on a large corpus: near CompressAI's quality-3 Kodak
points (their results/image/kodak: bmshj2018-hyperprior 0.320 bpp / 30.97 dB, cheng2020-attn 0.269 bpp /
31.32 dB). An imported CompressAI checkpoint needs no training:
`jaxsemic import-compressai CKPT --arch ARCH --out MODEL_DIR`.
"""

from jaxsemic.training.config import base_config
from jaxsemic.zoo.config import ZOO_NAMES, zoo_model_config

# CompressAI's quality-3 lambda (MSE) and model sizes below quality 6 (compressai.zoo.image.cfgs).
QUALITY3_LMBDA = 0.0067
QUALITY3_SIZES = {"bmshj2018-factorized": (128, 192), "bmshj2018-hyperprior": (128, 192),
                  "mbt2018-mean": (128, 192), "mbt2018": (192, 192), "cheng2020-anchor": (128, 128),
                  "cheng2020-attn": (128, 128)}


def get_config(arg: str = "bmshj2018-hyperprior"):
  """`ARCH` or `ARCH,small`."""
  name, *flags = arg.split(",")
  if name not in ZOO_NAMES:
    raise ValueError(f"unknown architecture {name!r}; one of {', '.join(ZOO_NAMES)}")
  c = base_config()
  n, m = QUALITY3_SIZES[name]
  c.model = zoo_model_config(name, n, m)
  c.lmbda = QUALITY3_LMBDA
  c.batch_size = 16
  c.data.crop_size = 256
  c.learning_rate = 1e-4
  c.grad_clip = 1.0
  c.num_train_steps = 200_000
  c.lr_boundaries = (150_000,)
  c.lr_scales = (0.1,)
  if "small" in flags:
    c.model = zoo_model_config(name, 32, 32 if name.startswith("cheng") else 48)
    c.batch_size = 4
    c.data.crop_size = 128
    c.data.worker_count = 0
    c.learning_rate = 1e-3
    c.num_train_steps = 200
    c.lr_boundaries = (150,)
    c.log_every = 25
    c.checkpoint_every = 100
  return c
