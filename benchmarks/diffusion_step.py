"""One UNet + ControlNet denoising step at SD-1.5 size: our Flax port vs diffusers (PyTorch) on this CPU.

Random weights, 64x64 latent (512x512 hint), batch 1, 77 context tokens, fp32. Also times the ORAG step
of SEDIC (Sec. III-B, eq. 3): dE/dz through the cross-attention maps of `--layers`, then the step.
Prints seconds per step and the ratios, and the process' peak memory after each phase.

  python benchmarks/diffusion_step.py             # all phases (several minutes on a shared 2-core CPU)
  python benchmarks/diffusion_step.py --reps 1 --warmup 0   # what the docs report (one call each)
  python benchmarks/diffusion_step.py --skip-grad --reps 1 --latent 32
"""

import argparse
import gc
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.diffusion.config import UNetConfig
from jaxsemic.diffusion.controlnet import ControlNetModel
from jaxsemic.diffusion.guidance import guided_latent
from jaxsemic.diffusion.pretrained import random_params
from jaxsemic.diffusion.unet import UNet2DConditionModel

SD15 = dict(in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
            attention_head_dim=8, cross_attention_dim=768, norm_num_groups=32,
            down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
            up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3)
ORAG_LAYERS = ('up_blocks.1.attentions.0.transformer_blocks.0.attn2',
               'up_blocks.1.attentions.1.transformer_blocks.0.attn2',
               'up_blocks.1.attentions.2.transformer_blocks.0.attn2')


def peak_gib() -> float:
  """Peak resident memory of this process so far, GiB."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def timed(fn, reps: int) -> float:
  """Median wall time of fn() over reps calls (after the caller's warm-up)."""
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def bench_jax(args) -> dict[str, float]:
  """Compile + time our step (and the ORAG guided step)."""
  dtype = jnp.dtype(args.dtype)
  cfg = UNetConfig.from_diffusers(SD15)
  unet, cn = UNet2DConditionModel(cfg, dtype=dtype), ControlNetModel(cfg, 'pixel', dtype=dtype)
  unet_params, cn_params = random_params(unet, 'unet', 0), random_params(cn, 'controlnet', 1)
  rng = np.random.default_rng(0)
  z = jnp.asarray(rng.standard_normal((1, args.latent, args.latent, 4), np.float32))
  ctx = jnp.asarray(rng.standard_normal((1, 77, 768), np.float32))
  hint = jnp.asarray(rng.random((1, 8 * args.latent, 8 * args.latent, 3), np.float32))
  t = jnp.asarray([500.0])

  def step(up, cp, z):
    down, mid = cn.apply({'params': cp}, z, t, ctx, hint, 1.0)
    return unet.apply({'params': up}, z, t, ctx, down, mid)

  def orag_step(up, cp, z):
    mask = jnp.zeros((1, args.latent, args.latent)).at[:, :, : args.latent // 2].set(1.0)
    control = lambda latent: cn.apply({'params': cp}, latent, t, ctx, hint, 1.0)
    z, _ = guided_latent(unet, up, z, t, ctx, mask, [1, 2], ORAG_LAYERS, 40.0, control)
    return step(up, cp, z)

  out = {}
  for name, fn in (('step', step), ('orag', orag_step))[: 1 if args.skip_grad else 2]:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(unet_params, cn_params, z).compile()
    compile_seconds = time.perf_counter() - start
    out[name] = timed(lambda: jax.block_until_ready(compiled(unet_params, cn_params, z)), args.reps)
    print(f'jax {name}: compile {compile_seconds:.1f} s, step {out[name]:.2f} s, peak {peak_gib():.1f} GiB',
          flush=True)
  return out


def bench_torch(args) -> float:
  """Time diffusers' ControlNetModel + UNet2DConditionModel for the same step."""
  import diffusers  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  unet = diffusers.UNet2DConditionModel(**SD15).eval()
  cn = diffusers.ControlNetModel(**{k: v for k, v in SD15.items() if k not in ('up_block_types', 'out_channels')}
                                 ).eval()
  z = torch.randn(1, 4, args.latent, args.latent)
  ctx, hint, t = torch.randn(1, 77, 768), torch.rand(1, 3, 8 * args.latent, 8 * args.latent), torch.tensor([500.0])

  def step():
    with torch.no_grad():
      down, mid = cn(z, t, ctx, controlnet_cond=hint, return_dict=False)
      return unet(z, t, ctx, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample

  if args.warmup:
    step()
  seconds = timed(step, args.reps)
  print(f'torch step: {seconds:.2f} s (threads {torch.get_num_threads()}), peak {peak_gib():.1f} GiB', flush=True)
  return seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--latent', type=int, default=64, help='latent side (64 = 512x512 images)')
  parser.add_argument('--reps', type=int, default=2, help='timed calls per phase (median)')
  parser.add_argument('--warmup', type=int, default=1, help='untimed PyTorch calls first (0 or 1)')
  parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
  parser.add_argument('--skip-grad', action='store_true', help='skip the ORAG (differentiated maps) step')
  args = parser.parse_args()
  ours = bench_jax(args)
  gc.collect()
  reference = bench_torch(args)
  print(f'RESULT ours/diffusers step time: {ours["step"] / reference:.2f} '
        f'(ours {ours["step"]:.2f} s, diffusers {reference:.2f} s, latent {args.latent}, {args.dtype})')
  if 'orag' in ours:
    print(f'RESULT ORAG step (dE/dz through cross-attention maps + step) / plain step: '
          f'{ours["orag"] / ours["step"]:.2f} (ours {ours["orag"]:.2f} s)')
  print(f'peak memory {peak_gib():.1f} GiB')


if __name__ == '__main__':
  main()
