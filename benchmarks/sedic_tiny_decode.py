"""SEDIC decode (Algorithm 1) on the tiny random models: stage timings at a Kodak-size latent.

The whole ORAG path (guided object stages, eq. 4 blends, VAE round trips, overall stage) with meaningless
pixels: it measures the pipeline's own overhead and compile times, not SD's cost. Runs the decode twice and
prints per-stage seconds for both (the first includes XLA compilation).

  python benchmarks/sedic_tiny_decode.py                        # 768x512, J = 3, 10 / 20 steps
  python benchmarks/sedic_tiny_decode.py --size 256 384 --objects 1
"""

import argparse
import json
import time

import numpy as np

from jaxsemic.sedic import pipeline as P


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', type=int, nargs=2, default=(512, 768), metavar=('H', 'W'))
  parser.add_argument('--objects', type=int, default=3)
  parser.add_argument('--scheduler', default='ddim', choices=('ddim', 'dpm'))
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
  components = P.tiny_components(0)
  print(f'tiny components: {time.perf_counter() - start:.1f} s')
  cfg = P.DecoderConfig(scheduler=args.scheduler)
  for call in ('first (compiles)', 'second'):
    out = P.decode(image, texts, masks, components, cfg, seed=0)
    print(call, json.dumps({k: round(v, 2) for k, v in out.seconds.items()}))


if __name__ == '__main__':
  main()
