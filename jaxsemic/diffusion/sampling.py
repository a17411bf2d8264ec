"""A generic diffusion sampling loop: one compiled step function reused for every step of a schedule.

`make_sampler(config, 'ddim' | 'dpm', n)` bundles a scheduler's per-step tables; `update` is one solver step
(DDIM or DPM-Solver++(2M), `schedulers.py`); `model_output` calls a denoiser with optional classifier-free
guidance; `run` is `lax.scan`'s contract as a Python loop over a jitted step (the step index is traced, so
it compiles once), which lets a progress bar advance between steps; `sample` puts these together for plain
text-conditioned sampling.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.diffusion import schedulers as S
from jaxsemic.errors import UserError

SOLVERS = ('ddim', 'dpm')
# model_fn(params, z [B,h,w,C], timestep [], context pytree with batch-first leaves) -> model output like z.
ModelFn = Callable[[Any, jax.Array, jax.Array, Any], jax.Array]


class Sampler(NamedTuple):
  """A solver, its noise schedule and the precomputed tables of an n-step run."""
  solver: str  # 'ddim' | 'dpm'
  config: S.SchedulerConfig
  schedule: S.DDIMSchedule | S.DPMSchedule
  ddim_eta: float = 0.0  # DDIM only: 0 = deterministic

  @property
  def num_steps(self) -> int:
    """Number of denoising steps."""
    return int(self.schedule.timesteps.shape[0])

  @property
  def timesteps(self) -> np.ndarray:
    """Training timesteps visited, high to low, int."""
    return np.asarray(self.schedule.timesteps)


class State(NamedTuple):
  """What a solver carries from step to step: the latent and (DPM-Solver++) the previous x0 prediction."""
  z: jax.Array
  x0: jax.Array


def make_sampler(config: S.SchedulerConfig, solver: str, num_steps: int, ddim_eta: float = 0.0) -> Sampler:
  """Tables for `num_steps` steps of `solver` ('ddim' or 'dpm' = DPM-Solver++(2M))."""
  if solver == 'ddim':
    return Sampler(solver, config, S.ddim_schedule(config, num_steps), float(ddim_eta))
  if solver == 'dpm':
    if ddim_eta:
      raise UserError('ddim_eta applies to the DDIM solver only')
    return Sampler(solver, config, S.dpm_schedule(config, num_steps))
  raise UserError(f'unknown solver {solver!r}; expected one of {", ".join(SOLVERS)}')


def levels_after(sampler: Sampler) -> tuple[jax.Array, jax.Array]:
  """(sqrt(alpha_bar), sqrt(1 - alpha_bar)) of the latent after each step, [n] each.

  The noise levels `update` lands on, so a clean latent can be forward-noised onto the same trajectory.
  """
  if sampler.solver == 'ddim':
    a = sampler.schedule.alpha_prev
    return jnp.sqrt(a), jnp.sqrt(1.0 - a)
  return sampler.schedule.alpha[1:], sampler.schedule.sigma[1:]


def initial_state(z_T: jax.Array) -> State:
  """The state before step 0 (the x0 slot is unused at step 0)."""
  return State(z_T, jnp.zeros_like(z_T))


def update(sampler: Sampler, i: jax.Array, model_out: jax.Array, state: State,
           key: jax.Array | None = None) -> State:
  """One solver step z_t -> z_{t-1} at step index i (may be traced); DDIM with eta > 0 draws noise from key."""
  if sampler.solver == 'ddim':
    noise = None
    if sampler.ddim_eta > 0:
      if key is None:
        raise ValueError('DDIM with eta > 0 needs a key')
      noise = jax.random.normal(jax.random.fold_in(key, i), state.z.shape, state.z.dtype)
    z, x0 = S.ddim_step(sampler.config, sampler.schedule, i, model_out, state.z, sampler.ddim_eta, noise)
  else:
    z, x0 = S.dpm_step(sampler.config, sampler.schedule, i, model_out, state.z, state.x0)
  return State(z, x0)


def model_output(model_fn: ModelFn, params, z: jax.Array, t: jax.Array, context, uncond_context=None,
                 cfg_scale: float = 1.0) -> jax.Array:
  """The denoiser's output; with `uncond_context` and cfg_scale != 1, classifier-free guidance.

  CFG runs the model once on the doubled batch [uncond, cond] (every context leaf is doubled the same way,
  e.g. a ControlNet's condition latent next to the text) and returns uncond + s * (cond - uncond).
  """
  if uncond_context is None or cfg_scale == 1.0:
    return model_fn(params, z, t, context)
  both = jax.tree_util.tree_map(lambda u, c: jnp.concatenate([u, c]), uncond_context, context)
  out = model_fn(params, jnp.concatenate([z, z]), t, both)
  uncond, cond = jnp.split(out, 2)
  return S.classifier_free_guidance(uncond, cond, cfg_scale)


def run(step_fn: Callable, carry, num_steps: int, xs=None,
        on_step: Callable[[int, Any], None] | None = None) -> tuple[Any, Any]:
  """carry, y_i = step_fn(i, carry, xs[i]) for i < num_steps; returns (carry, stacked ys) like `lax.scan`.

  A Python loop so `on_step(i, carry)` can report progress; jit `step_fn` once (i is passed as an int32
  array, so it is traced and every step reuses the compiled program).
  """
  ys = []
  for i in range(num_steps):
    x = None if xs is None else jax.tree_util.tree_map(lambda a, i=i: a[i], xs)
    carry, y = step_fn(jnp.asarray(i, jnp.int32), carry, x)
    ys.append(y)
    if on_step is not None:
      on_step(i, carry)
  stacked = None if not ys or ys[0] is None else jax.tree_util.tree_map(lambda *a: jnp.stack(a), *ys)
  return carry, stacked


def sample(model_fn: ModelFn, params, sampler: Sampler, z_T: jax.Array, context, uncond_context=None,
           cfg_scale: float = 1.0, key: jax.Array | None = None,
           on_step: Callable[[int, Any], None] | None = None) -> jax.Array:
  """Denoise z_T over the sampler's steps; returns z_0. CFG is used when `uncond_context` is given and s != 1."""

  @jax.jit
  def step(i, state, _, params, context, uncond_context):
    t = jnp.asarray(sampler.schedule.timesteps)[i]
    out = model_output(model_fn, params, state.z, t, context, uncond_context, cfg_scale)
    return update(sampler, i, out, state, key), None

  state, _ = run(lambda i, s, x: step(i, s, x, params, context, uncond_context), initial_state(z_T),
                 sampler.num_steps, on_step=on_step)
  return state.z
