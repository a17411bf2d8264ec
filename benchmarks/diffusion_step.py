"""One UNet + ControlNet denoising step at SD-1.5 size: our Flax port vs diffusers (PyTorch), same weights, one run.

diffusers' models are built with seeded random weights (its zero-initialised ControlNet convolutions get small
random values, so the residuals are not all zero) and converted to ours (`params_from_state_dict`). Batch 1,
77 context tokens, a 64x64 latent (512x512 hint), float32. Each side's first call is timed apart (ours includes
tracing and XLA compilation); then the sides take turns (ours, diffusers, ours, ...) for --reps rounds. The
ORAG step of SEDIC as its decoder runs it (the compiled program `sedic.pipeline.object_step` calls at top level,
at t = 500, eta 40: eq. 3's dE/dz through the cross-attention maps of three `up_blocks.1` layers, summed,
through ControlNet and UNet, then the ControlNet + UNet step, the DDIM update and the eq. 4 blend) is timed in
turns with our plain step and the decoder's unguided object step (the same program without the guidance),
after diffusers' models are freed; its peak RSS is the process' high-water mark during that phase (reset via
/proc/self/clear_refs).
Prints the CPU model and the load average with every result.

  python benchmarks/diffusion_step.py                # the whole table at SD-1.5 size (~10 GiB, minutes)
  python benchmarks/diffusion_step.py --size half    # half the channels (same depth, 4096-token attention)
  python benchmarks/diffusion_step.py --size half --latent 32 --reps 1 --skip-guided   # quickest check
  python benchmarks/diffusion_step.py --skip-diffusers --methods exact,no_controlnet_grad,shared_controlnet,one_pass
      # the guided step by each guidance method (all but exact approximate it) in turns, and each method's
      # agreement with the exact one (cos of dE/dz, energy decrease, UNet output); --size tiny for a tiny config
"""

import argparse
import functools
import gc
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.diffusion.config import UNetConfig
from jaxsemic.diffusion.controlnet import ControlNetModel
from jaxsemic.diffusion import sampling
from jaxsemic.diffusion.guidance import denoiser_energy, token_weights
from jaxsemic.diffusion.pretrained import params_from_state_dict, random_params
from jaxsemic.diffusion.schedulers import SchedulerConfig
from jaxsemic.diffusion.unet import UNet2DConditionModel
from jaxsemic.sedic.pipeline import GUIDANCE_METHODS, StageInputs, StepStatic, object_step_program, step_output
from machine import cpu_model, load, memory_gib

SD15 = dict(in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
            attention_head_dim=8, cross_attention_dim=768, norm_num_groups=32,
            down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
            up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3)
SIZES = {'sd15': SD15, 'half': {**SD15, 'block_out_channels': (160, 320, 640, 640)},
         'tiny': {**SD15, 'block_out_channels': (32, 32, 64, 64), 'cross_attention_dim': 768}}
ORAG_LAYERS = tuple(f'up_blocks.1.attentions.{i}.transformer_blocks.0.attn2' for i in range(3))
ORAG_TOKENS, ORAG_ETA = (1, 2), 40.0


def reset_peak() -> None:
  """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
  with open('/proc/self/clear_refs', 'w', encoding='ascii') as refs:
    refs.write('5')


def seconds(fn) -> float:
  """Wall time of one fn() call."""
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def diffusers_models(arch: dict, seed: int = 0):
  """diffusers' UNet and ControlNet, seeded; zero-initialised tensors get small random values."""
  import diffusers  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  torch.manual_seed(seed)
  unet = diffusers.UNet2DConditionModel(**arch).eval()
  cn = diffusers.ControlNetModel(**{k: v for k, v in arch.items() if k not in ('up_block_types', 'out_channels')})
  with torch.no_grad():
    for tensor in cn.parameters():
      if not tensor.any():
        tensor.normal_(0.0, 0.02)
  return unet, cn.eval()


def inputs(latent: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Latent, text context and hint (NHWC) shared by both sides."""
  rng = np.random.default_rng(seed)
  return dict(z=rng.standard_normal((1, latent, latent, 4), np.float32),
              ctx=rng.standard_normal((1, 77, 768), np.float32),
              hint=rng.random((1, 8 * latent, 8 * latent, 3), np.float32))


def torch_step(unet, cn, data: dict[str, np.ndarray]):
  """diffusers' ControlNet + UNet step as a no-argument callable returning NHWC numpy."""
  import torch  # pylint: disable=import-outside-toplevel
  z = torch.from_numpy(data['z'].transpose(0, 3, 1, 2).copy())
  hint = torch.from_numpy(data['hint'].transpose(0, 3, 1, 2).copy())
  ctx, t = torch.from_numpy(data['ctx']), torch.tensor([500.0])

  def step():
    with torch.no_grad():
      down, mid = cn(z, t, ctx, controlnet_cond=hint, return_dict=False)
      out = unet(z, t, ctx, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
    return out.numpy().transpose(0, 2, 3, 1)

  return step


def jax_steps(arch: dict, state_dicts, data: dict[str, np.ndarray], dtype):
  """Our modules and params (converted from diffusers' state dicts, or random if None); the plain step, SEDIC's
  guided step as the pipeline runs it, what that step feeds its solver, and the eq. 2 energy."""
  cfg = UNetConfig.from_diffusers(arch)
  modules = (UNet2DConditionModel(cfg, dtype=dtype), ControlNetModel(cfg, 'pixel', dtype=dtype))
  if state_dicts is None:
    params = {'unet': random_params(modules[0], 'unet', 0), 'controlnet': random_params(modules[1], 'controlnet', 1)}
  else:
    params = {'unet': params_from_state_dict(modules[0], 'unet', state_dicts[0]),
              'controlnet': params_from_state_dict(modules[1], 'controlnet', state_dicts[1])}
  ctx, hint, t = jnp.asarray(data['ctx']), jnp.asarray(data['hint']), jnp.asarray([500.0])
  latent = data['z'].shape[1]
  mask = jnp.zeros((latent, latent), bool).at[:, : latent // 2].set(True)
  scheduler = SchedulerConfig(steps_offset=0)  # DDIM, 2 steps: step 0 is at t = 500
  stage = StageInputs(sampling.make_sampler(scheduler, 'ddim', 2).schedule, ctx, ctx, hint, mask, jnp.ones_like(mask),
                      token_weights(ORAG_TOKENS, ctx.shape[1]), jnp.asarray(ORAG_ETA, jnp.float32), jax.random.key(0))
  static = lambda method: StepStatic('ddim', scheduler, 0.0, 1.0, 1.0, ORAG_LAYERS, 'sum', method)
  control = lambda params, z: modules[1].apply({'params': params['controlnet']}, z, t, ctx, hint, 1.0)

  def step(params, z):
    return modules[0].apply({'params': params['unet']}, z, t, ctx, *control(params, z))

  def object_program(params, z, method='exact', guided=True):
    """(static arguments, arguments) of the program `pipeline.object_step` calls for step 0 (guided or not, the
    guidance by `method`, see GUIDANCE_METHODS), to compile and call as the decoder does."""
    return (modules, static(method), guided), (params, jnp.asarray(0, jnp.int32), sampling.initial_state(z), z, stage)

  def solver_input(params, z, method):
    """What that step gives its solver (`pipeline.step_output`): (UNet output, guided latent)."""
    z1, _, out = step_output(modules, static(method), params, 0, z, True, stage)
    return out, z1

  def energy(params, z):
    """Eq. 2 summed over ORAG_LAYERS at z, ControlNet residuals at z (the quantity every method lowers)."""
    return denoiser_energy(modules[0], params['unet'], z, t, ctx, mask[None].astype(jnp.float32), stage.weights,
                           ORAG_LAYERS, control_fn=lambda z: control(params, z))[0].sum()

  return params, step, object_program, solver_input, energy


def compile_timed(jitted, *args):
  """lower + compile a jitted function; returns (compiled, seconds, XLA temp buffer GiB)."""
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  elapsed = time.perf_counter() - start
  memory = compiled.memory_analysis()
  return compiled, elapsed, (memory.temp_size_in_bytes / 2 ** 30 if memory is not None else float('nan'))


def take_turns(fns: dict, reps: int) -> dict[str, list[float]]:
  """Call each fn in turn, `reps` rounds; wall seconds per call."""
  times = {name: [] for name in fns}
  for _ in range(reps):
    for name, fn in fns.items():
      times[name].append(seconds(fn))
  return times


def row(name: str, times: list[float], first: float, extra: str = '') -> str:
  """One table line: min and median seconds, first-call seconds."""
  return (f'{name:40}{min(times):9.2f}{statistics.median(times):9.2f}{first:11.1f}  {extra}').rstrip()


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', default='sd15', choices=tuple(SIZES), help='sd15, or half the channels')
  parser.add_argument('--latent', type=int, default=64, help='latent side (64 = 512x512 images)')
  parser.add_argument('--reps', type=int, default=3, help='timed rounds after the first calls')
  parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
  parser.add_argument('--skip-guided', action='store_true', help='skip the ORAG step')
  parser.add_argument('--methods', default='exact', help='comma-separated guidance methods to time: '
                      f'{", ".join(GUIDANCE_METHODS)} (all but exact are approximations; printed against exact)')
  parser.add_argument('--skip-diffusers', action='store_true',
                      help='time only our plain and ORAG steps (random weights, no PyTorch models in memory)')
  args = parser.parse_args()
  methods = tuple(args.methods.split(','))
  if any(m not in GUIDANCE_METHODS for m in methods):
    parser.error(f'--methods: choose from {", ".join(GUIDANCE_METHODS)}')
  import torch  # pylint: disable=import-outside-toplevel
  arch, data = SIZES[args.size], inputs(args.latent)
  print(f'CPU {cpu_model()}, {os.cpu_count()} cores; jax {jax.__version__}, torch {torch.__version__} '
        f'({torch.get_num_threads()} threads); {args.size} channels {arch["block_out_channels"]}, latent '
        f'{args.latent}, batch 1, {args.dtype}; load {load()}', flush=True)
  t_unet, t_cn = (None, None) if args.skip_diffusers else diffusers_models(arch)
  state_dicts = None if args.skip_diffusers else (t_unet.state_dict(), t_cn.state_dict())
  params, step, object_program, solver_input, energy = jax_steps(arch, state_dicts, data, jnp.dtype(args.dtype))
  del state_dicts
  z = jnp.asarray(data['z'])
  compiled, compile_s, temp_gib = compile_timed(jax.jit(step), params, z)
  ours = lambda: jax.block_until_ready(compiled(params, z))
  first_ours = compile_s + seconds(ours)
  if not args.skip_diffusers:
    compare(ours, torch_step(t_unet, t_cn, data), first_ours, compile_s, temp_gib, args.reps)
  if args.skip_guided:
    return
  del t_unet, t_cn
  gc.collect()
  time_guided(ours, first_ours, object_program, params, z, args.reps, methods)
  if len(methods) > 1 or methods[0] != 'exact':
    agreement(methods, solver_input, energy, params, z)


def time_guided(ours, first_ours: float, object_program, params, z, reps: int, methods: tuple[str, ...]) -> None:
  """Time the ORAG step (each of `methods`) against our plain step and the unguided object step in turns; print
  the table and the peak RSS of this phase."""
  resident = memory_gib('VmRSS')
  reset_peak()
  calls, first, extra = {}, {}, {}
  for name, method, guided in [('unguided', 'exact', False)] + [(m, m, True) for m in methods]:
    static_args, args = object_program(params, z, method, guided)
    compiled, compile_s, temp = compile_timed(object_step_program, *static_args, *args)
    calls[name] = functools.partial(lambda c, a: jax.block_until_ready(c(*a)), compiled, args)
    first[name] = compile_s + seconds(calls[name])
    extra[name] = f'compile {compile_s:.1f} s, XLA temp {temp:.2f} GiB'
  compile_peak = memory_gib('VmHWM')
  reset_peak()
  times = take_turns({'plain': ours, **calls}, reps)
  print(f'\n{"ORAG (guided) step":40}{"min s":>9}{"median s":>9}{"first s":>11}  (load {load()})')
  print(row('ours, plain step', times['plain'], first_ours))
  print(row('ours, object step, unguided', times['unguided'], first['unguided'], extra['unguided']))
  for method in methods:
    print(row(f'ours, object step, guided ({method})', times[method], first[method], extra[method]))
  ratio = lambda a, b, f: f(times[a]) / f(times[b])
  for method in methods:
    print(f'RESULT guided ({method})/plain step time: min {ratio(method, "plain", min):.2f}, median '
          f'{ratio(method, "plain", statistics.median):.2f} (target <= 1.6); / unguided object step: min '
          f'{ratio(method, "unguided", min):.2f}, median {ratio(method, "unguided", statistics.median):.2f}')
  print(f'peak RSS of the guided phase {memory_gib("VmHWM"):.1f} GiB (weights resident before {resident:.1f} GiB; '
        f'compile peak {compile_peak:.1f} GiB); load {load()}', flush=True)


def agreement(methods: tuple[str, ...], solver_input, energy, params, z) -> None:
  """Each method against the exact one: cos(dE/dz), the eq. 2 energy's decrease after one guidance update, and
  the UNet output the solver gets (relative difference)."""
  results = {m: jax.jit(functools.partial(solver_input, method=m))(params, z)
             for m in dict.fromkeys(('exact',) + methods)}
  e = jax.jit(energy)
  e0 = float(e(params, z))
  step_exact = z - results['exact'][1]
  drop_exact = e0 - float(e(params, results['exact'][1]))
  print(f'guidance agreement with the exact method (eq. 2 energy at z: {e0:.4f}; exact update lowers it by '
        f'{drop_exact:.3g}):')
  for method, (out, z1) in results.items():
    if method == 'exact':
      continue
    update = (z - z1).ravel()
    cos = float(jnp.vdot(update, step_exact.ravel()) / (jnp.linalg.norm(update) * jnp.linalg.norm(step_exact)))
    drop = e0 - float(e(params, z1))
    out_exact = results['exact'][0]
    diff = float(jnp.linalg.norm(out - out_exact) / jnp.linalg.norm(out_exact))
    print(f'RESULT {method}: cos(dE/dz, exact) {cos:.4f}; energy decrease {drop:.3g} ({drop / drop_exact:.2f}x '
          f'the exact update\'s); UNet output for the solver vs exact: relative difference {diff:.2e}', flush=True)


def compare(ours, theirs, first_ours: float, compile_s: float, temp_gib: float, reps: int) -> None:
  """Time diffusers' step against ours in turns and print the table and the parity of the outputs."""
  first_theirs = seconds(theirs)
  reference = theirs()
  difference = np.abs(np.asarray(ours(), np.float32) - reference).max() / np.abs(reference).max()
  times = take_turns({'ours': ours, 'diffusers': theirs}, reps)
  ratio_min = min(times['ours']) / min(times['diffusers'])
  ratio_median = statistics.median(times['ours']) / statistics.median(times['diffusers'])
  print(f'\n{"UNet + ControlNet step":40}{"min s":>9}{"median s":>9}{"first s":>11}  (load {load()})')
  print(row('diffusers (PyTorch)', times['diffusers'], first_theirs))
  print(row('ours (first: compile + call)', times['ours'], first_ours, f'compile {compile_s:.1f} s, '
            f'XLA temp {temp_gib:.2f} GiB'))
  print(f'RESULT ours/diffusers step time: min {ratio_min:.2f}, median {ratio_median:.2f} (target <= 1.0); '
        f'max |ours - diffusers| / max |diffusers| = {difference:.1e}; load {load()}', flush=True)


if __name__ == '__main__':
  main()
