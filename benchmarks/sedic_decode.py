"""SEDIC decode (Algorithm 1) on random models: stage timings at a Kodak-size latent.

The whole ORAG path (guided object stages, eq. 4 blends, VAE round trips, overall stage) with meaningless
pixels. `--models tiny` (default): the tiny random models, measuring the pipeline's own overhead and compile
times, not SD's cost. `--models sd21`: random models of the sizes SEDIC's decoder runs (SD 2.1-base UNet,
IRControlNet, SD VAE, OpenCLIP-H text encoder; `components.sd21_random_components`, ~6.6 GB of weights): what a
decode costs on this machine. Prints per-stage seconds for each call (the first includes XLA compilation), the
CPU model, the load average and the peak RSS.

  python benchmarks/sedic_decode.py                        # 768x512, J = 3, 10 / 20 steps, tiny, 2 calls
  python benchmarks/sedic_decode.py --size 256 384 --objects 1
  python benchmarks/sedic_decode.py --models sd21 --calls 1   # SD size: minutes per call on a CPU
"""

import argparse
import json
import os
import time

import numpy as np

from jaxsemic.sedic import components as C
from jaxsemic.sedic import pipeline as P
from machine import cpu_model, load, memory_gib


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', type=int, nargs=2, default=(512, 768), metavar=('H', 'W'))
  parser.add_argument('--objects', type=int, default=3)
  parser.add_argument('--scheduler', default='ddim', choices=('ddim', 'dpm'))
  parser.add_argument('--models', default='tiny', choices=('tiny', 'sd21'))
  parser.add_argument('--calls', type=int, default=2, help='decodes in a row (the first compiles)')
  parser.add_argument('--guidance-method', default='exact', choices=P.GUIDANCE_METHODS,
                      help='DecoderConfig.guidance_method (all but exact approximate the ORAG gradient)')
  args = parser.parse_args()
  h, w = args.size
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (h, w, 3), np.uint8)
  masks = np.zeros((args.objects, h // 8, w // 8), bool)
  for j in range(args.objects):  # overlapping horizontal bands
    masks[j, j * h // (8 * (args.objects + 1)):(j + 2) * h // (8 * (args.objects + 1))] = True
  objects = [P.ObjectText(f'red door {j}', 'a tall red door with a knob') for j in range(args.objects)]
  texts = P.Texts('a stone house with a red door', tuple(objects))
  start = time.perf_counter()
  components = C.sd21_random_components(0) if args.models == 'sd21' else C.tiny_components(0)
  print(f'{args.models} random components: {time.perf_counter() - start:.1f} s; CPU {cpu_model()}, '
        f'{os.cpu_count()} cores; {w}x{h}, J = {args.objects}, guidance {args.guidance_method}; load {load()}',
        flush=True)
  cfg = P.DecoderConfig(scheduler=args.scheduler, guidance_method=args.guidance_method)
  for call in range(args.calls):
    out = P.decode(image, texts, masks, components, cfg, seed=0)
    print('first (compiles)' if call == 0 else f'call {call + 1}', json.dumps({k: round(v, 2) for k, v in
                                                                                out.seconds.items()}), flush=True)
  print(f'peak RSS {memory_gib():.1f} GiB; load {load()}')


if __name__ == '__main__':
  main()
