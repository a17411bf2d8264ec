"""DDIM and DPM-Solver++ (2M) samplers in JAX, step for step equal to diffusers' schedulers.

Pure functional: `ddim_schedule(cfg, n)` / `dpm_schedule(cfg, n)` precompute the per-step tables once
(in float32 NumPy, as diffusers does in float32 torch); `ddim_step` / `dpm_step` take the step index `i`
(may be traced, so the loop can be a `lax.scan`) and return the next latent.
"""

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.errors import UserError

PREDICTION_TYPES = ('epsilon', 'v_prediction', 'sample')


@dataclasses.dataclass(frozen=True)
class SchedulerConfig:
  """The noise schedule and sampling options shared by DDIM and DPM-Solver++ (diffusers config names)."""
  num_train_timesteps: int = 1000
  beta_start: float = 0.00085
  beta_end: float = 0.012
  beta_schedule: str = 'scaled_linear'
  prediction_type: str = 'epsilon'
  timestep_spacing: str = 'leading'
  steps_offset: int = 1
  set_alpha_to_one: bool = False  # DDIM: alpha_cumprod used after the last step
  clip_sample: bool = False  # DDIM: clip the predicted x0
  clip_sample_range: float = 1.0
  lower_order_final: bool = True  # DPM-Solver++: first-order steps at the end of short schedules
  euler_at_final: bool = False
  final_sigmas_type: str = 'zero'
  lambda_min_clipped: float = -math.inf
  trained_betas: tuple[float, ...] | None = None

  @classmethod
  def from_diffusers(cls, cfg: dict[str, Any], **overrides) -> 'SchedulerConfig':
    """Read a diffusers scheduler_config.json dict (any SD scheduler class); unknown keys are ignored."""
    for key, bad in (('thresholding', True), ('rescale_betas_zero_snr', True), ('use_karras_sigmas', True),
                     ('use_exponential_sigmas', True), ('use_beta_sigmas', True), ('use_lu_lambdas', True),
                     ('use_flow_sigmas', True)):
      if cfg.get(key) == bad:
        raise UserError(f'unsupported scheduler config: {key}={bad}')
    names = {f.name for f in dataclasses.fields(cls)}
    fields = {k: v for k, v in cfg.items() if k in names and v is not None}
    if 'trained_betas' in fields:
      fields['trained_betas'] = tuple(fields['trained_betas'])
    if 'steps_offset' not in cfg:
      fields['steps_offset'] = 0  # diffusers' default when the config omits it
    config = cls(**{**fields, **overrides})
    config.validate()
    return config

  def validate(self) -> None:
    """One-line errors for values we do not implement."""
    if self.beta_schedule not in ('linear', 'scaled_linear', 'squaredcos_cap_v2') and self.trained_betas is None:
      raise UserError(f'unsupported beta_schedule {self.beta_schedule!r}')
    if self.prediction_type not in PREDICTION_TYPES:
      raise UserError(f'unsupported prediction_type {self.prediction_type!r}')
    if self.timestep_spacing not in ('leading', 'trailing', 'linspace'):
      raise UserError(f'unsupported timestep_spacing {self.timestep_spacing!r}')
    if self.final_sigmas_type not in ('zero', 'sigma_min'):
      raise UserError(f'unsupported final_sigmas_type {self.final_sigmas_type!r}')


def _cosine_betas(n: int, max_beta: float = 0.999) -> np.ndarray:
  """Betas of the 'squaredcos_cap_v2' schedule (Nichol & Dhariwal's cosine alpha_bar)."""
  alpha_bar = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
  return np.array([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)], np.float32)


def alphas_cumprod(cfg: SchedulerConfig) -> np.ndarray:
  """Cumulative product of (1 - beta) over the training timesteps, float32."""
  n = cfg.num_train_timesteps
  if cfg.trained_betas is not None:
    betas = np.asarray(cfg.trained_betas, np.float32)
  elif cfg.beta_schedule == 'linear':
    betas = np.linspace(cfg.beta_start, cfg.beta_end, n, dtype=np.float32)
  elif cfg.beta_schedule == 'scaled_linear':
    betas = np.linspace(cfg.beta_start ** 0.5, cfg.beta_end ** 0.5, n, dtype=np.float32) ** 2
  else:
    betas = _cosine_betas(n)
  return np.cumprod(1.0 - betas, dtype=np.float32)


def add_noise(cfg: SchedulerConfig, x0: jax.Array, noise: jax.Array, timestep: jax.Array) -> jax.Array:
  """Forward diffusion q(z_t | z_0) at an integer training timestep."""
  a = jnp.asarray(alphas_cumprod(cfg))[timestep]
  return jnp.sqrt(a) * x0 + jnp.sqrt(1.0 - a) * noise


def predicted_x0_and_eps(prediction_type: str, model_output: jax.Array, sample: jax.Array,
                         alpha: jax.Array, sigma: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Model output -> (x0, epsilon) for z = alpha * x0 + sigma * eps."""
  if prediction_type == 'epsilon':
    return (sample - sigma * model_output) / alpha, model_output
  if prediction_type == 'v_prediction':
    return alpha * sample - sigma * model_output, alpha * model_output + sigma * sample
  return model_output, (sample - alpha * model_output) / sigma


def classifier_free_guidance(uncond: jax.Array, cond: jax.Array, guidance_scale: float | jax.Array) -> jax.Array:
  """eps = eps_uncond + s * (eps_cond - eps_uncond) (Ho & Salimans 2022)."""
  return uncond + guidance_scale * (cond - uncond)


def guided_output(model_fn, sample: jax.Array, timestep: jax.Array, context_cond: jax.Array,
                  context_uncond: jax.Array, guidance_scale: float | jax.Array) -> jax.Array:
  """Run `model_fn(sample, timestep, context)` once on the doubled batch and apply CFG."""
  both = model_fn(jnp.concatenate([sample, sample]), timestep, jnp.concatenate([context_uncond, context_cond]))
  uncond, cond = jnp.split(both, 2)
  return classifier_free_guidance(uncond, cond, guidance_scale)


# ---- DDIM (Song et al. 2021) ----

def _spaced_timesteps(cfg: SchedulerConfig, n: int, solver: str) -> np.ndarray:
  """Inference timesteps, high to low, following diffusers' `timestep_spacing` rules per scheduler."""
  T = cfg.num_train_timesteps
  if n < 1 or n > T:
    raise UserError(f'number of sampling steps must be in 1..{T}, got {n}')
  if solver == 'ddim':
    if cfg.timestep_spacing == 'linspace':
      return np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)
    if cfg.timestep_spacing == 'leading':
      return (np.arange(0, n) * (T // n)).round()[::-1].astype(np.int64) + cfg.steps_offset
    return np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1
  lambdas = np.log(np.sqrt(alphas_cumprod(cfg))) - np.log(np.sqrt(1 - alphas_cumprod(cfg)))
  last = T - int(np.searchsorted(np.flip(lambdas), cfg.lambda_min_clipped))
  if cfg.timestep_spacing == 'linspace':
    return np.linspace(0, last - 1, n + 1).round()[::-1][:-1].astype(np.int64)
  if cfg.timestep_spacing == 'leading':
    return (np.arange(0, n + 1) * (last // (n + 1))).round()[::-1][:-1].astype(np.int64) + cfg.steps_offset
  return np.arange(last, 0, -T / n).round().astype(np.int64) - 1


class DDIMSchedule(NamedTuple):
  """Per-step tables of a DDIM run: timesteps and alpha_cumprod at t and at the previous timestep."""
  timesteps: jax.Array  # [n] int32, high to low
  alpha_t: jax.Array  # [n]
  alpha_prev: jax.Array  # [n]


def ddim_schedule(cfg: SchedulerConfig, num_steps: int) -> DDIMSchedule:
  """Tables for `num_steps` DDIM steps (diffusers DDIMScheduler.set_timesteps)."""
  ac = alphas_cumprod(cfg)
  timesteps = _spaced_timesteps(cfg, num_steps, 'ddim')
  prev = timesteps - cfg.num_train_timesteps // num_steps
  final = np.float32(1.0) if cfg.set_alpha_to_one else ac[0]
  alpha_prev = np.where(prev >= 0, ac[np.clip(prev, 0, None)], final)
  return DDIMSchedule(jnp.asarray(timesteps, jnp.int32), jnp.asarray(ac[timesteps]), jnp.asarray(alpha_prev))


def ddim_step(cfg: SchedulerConfig, schedule: DDIMSchedule, i: int | jax.Array, model_output: jax.Array,
              sample: jax.Array, eta: float = 0.0, noise: jax.Array | None = None
              ) -> tuple[jax.Array, jax.Array]:
  """One DDIM update z_t -> z_{t-1} (eq. 12 of Song et al.); returns (z_prev, predicted x0).

  eta > 0 needs `noise` (standard normal, shaped like sample).
  """
  a_t, a_prev = schedule.alpha_t[i], schedule.alpha_prev[i]
  x0, eps = predicted_x0_and_eps(cfg.prediction_type, model_output, sample, jnp.sqrt(a_t), jnp.sqrt(1 - a_t))
  if cfg.clip_sample:
    x0 = jnp.clip(x0, -cfg.clip_sample_range, cfg.clip_sample_range)
  std = eta * jnp.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
  prev = jnp.sqrt(a_prev) * x0 + jnp.sqrt(1 - a_prev - std ** 2) * eps
  if eta > 0:
    if noise is None:
      raise ValueError('ddim_step with eta > 0 needs noise')
    prev = prev + std * noise
  return prev, x0


# ---- DPM-Solver++ (2M), Lu et al. 2022, data-prediction multistep ----

class DPMSchedule(NamedTuple):
  """Per-step tables of a DPM-Solver++ run; arrays over the n+1 sigmas end with the final sigma."""
  timesteps: jax.Array  # [n] int32
  alpha: jax.Array  # [n+1] alpha_t = 1 / sqrt(1 + sigma^2)
  sigma: jax.Array  # [n+1] sigma_t = sigma * alpha_t
  lam: jax.Array  # [n+1] log(alpha_t / sigma_t)
  second_order: jax.Array  # [n] bool: may step i use the 2M update (given a previous x0)?


def dpm_schedule(cfg: SchedulerConfig, num_steps: int) -> DPMSchedule:
  """Tables for `num_steps` DPM-Solver++(2M) steps (diffusers DPMSolverMultistepScheduler.set_timesteps)."""
  ac = alphas_cumprod(cfg)
  timesteps = _spaced_timesteps(cfg, num_steps, 'dpm')
  all_sigmas = ((1 - ac) / ac) ** 0.5
  sigmas = np.interp(timesteps, np.arange(len(all_sigmas)), all_sigmas)
  last = 0.0 if cfg.final_sigmas_type == 'zero' else all_sigmas[0]
  sigmas = np.concatenate([sigmas, [last]]).astype(np.float32)
  alpha = (1.0 / np.sqrt(sigmas ** 2 + 1)).astype(np.float32)
  sigma_t = (sigmas * alpha).astype(np.float32)
  with np.errstate(divide='ignore'):
    lam = (np.log(alpha) - np.log(sigma_t)).astype(np.float32)
  n = len(timesteps)
  final_first_order = cfg.euler_at_final or (cfg.lower_order_final and n < 15) or cfg.final_sigmas_type == 'zero'
  second = np.arange(n) > 0
  if final_first_order:
    second[-1] = False
  return DPMSchedule(jnp.asarray(timesteps, jnp.int32), jnp.asarray(alpha), jnp.asarray(sigma_t),
                     jnp.asarray(lam), jnp.asarray(second))


def dpm_step(cfg: SchedulerConfig, schedule: DPMSchedule, i: int | jax.Array, model_output: jax.Array,
             sample: jax.Array, prev_x0: jax.Array | None) -> tuple[jax.Array, jax.Array]:
  """One DPM-Solver++ step (2M midpoint; first order at the first and, per config, last step).

  Returns (z_prev, x0); pass that x0 as `prev_x0` of the next step (None or anything at step 0).
  """
  alpha_s, sigma_s, alpha_t, sigma_t = schedule.alpha[i], schedule.sigma[i], schedule.alpha[i + 1], schedule.sigma[i + 1]
  x0, _ = predicted_x0_and_eps(cfg.prediction_type, model_output, sample, alpha_s, sigma_s)
  h = schedule.lam[i + 1] - schedule.lam[i]
  use_second = schedule.second_order[i]
  if prev_x0 is None:
    prev_x0, use_second = x0, jnp.asarray(False)
  h_prev = schedule.lam[i] - schedule.lam[jnp.maximum(i - 1, 0)]
  r = jnp.where(use_second, h_prev / h, 1.0)
  d1 = jnp.where(use_second, (x0 - prev_x0) / r, 0.0)
  prev = (sigma_t / sigma_s) * sample - alpha_t * (jnp.exp(-h) - 1.0) * (x0 + 0.5 * d1)
  return prev, x0
