"""DDIM and DPM-Solver++(2M) step for step against diffusers' schedulers, epsilon and v prediction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip('torch')
diffusers = pytest.importorskip('diffusers')

from jaxsemic.diffusion import schedulers as sch  # noqa: E402
from jaxsemic.errors import UserError  # noqa: E402

SD15 = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear',
            steps_offset=1, set_alpha_to_one=False, clip_sample=False)


def fake_model(x: np.ndarray, t: int) -> np.ndarray:
  """A deterministic stand-in for the denoiser whose output depends on the sample and the timestep."""
  return np.tanh(0.7 * x + 0.001 * t).astype(np.float32)


CASES = [
    ('ddim', dict(SD15, prediction_type='epsilon'), 10, 0.0),
    ('ddim', dict(SD15, prediction_type='v_prediction', timestep_spacing='trailing'), 7, 0.0),
    ('ddim', dict(SD15, prediction_type='epsilon', beta_schedule='linear', beta_start=1e-4, beta_end=0.02), 6, 0.8),
    ('dpm', dict(SD15, prediction_type='epsilon'), 10, 0.0),
    ('dpm', dict(SD15, prediction_type='v_prediction', timestep_spacing='linspace'), 20, 0.0),
    ('dpm', dict(SD15, prediction_type='epsilon', beta_schedule='squaredcos_cap_v2', timestep_spacing='trailing'),
     8, 0.0),
]


@pytest.mark.parametrize('kind,config,steps,eta', CASES)
def test_scheduler_step_for_step(kind, config, steps, eta):
  cls = diffusers.DDIMScheduler if kind == 'ddim' else diffusers.DPMSolverMultistepScheduler
  ref = cls.from_config(config)
  ref.set_timesteps(steps)
  cfg = sch.SchedulerConfig.from_diffusers(dict(ref.config))
  rng = np.random.default_rng(0)
  x0 = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
  noises = rng.standard_normal((steps, 1, 4, 8, 8)).astype(np.float32)
  if kind == 'ddim':
    schedule = sch.ddim_schedule(cfg, steps)
    step = jax.jit(lambda i, out, x, n: sch.ddim_step(cfg, schedule, i, out, x, eta, n))
  else:
    schedule = sch.dpm_schedule(cfg, steps)
    step = jax.jit(lambda i, out, x, prev: sch.dpm_step(cfg, schedule, i, out, x, prev))
  np.testing.assert_array_equal(np.asarray(schedule.timesteps), ref.timesteps.numpy())
  x_ref, x_ours, prev_x0 = torch.from_numpy(x0), jnp.asarray(x0), jnp.zeros_like(x0)
  for i, t in enumerate(ref.timesteps):
    out_ref = torch.from_numpy(fake_model(x_ref.numpy(), int(t)))
    out_ours = jnp.asarray(fake_model(np.asarray(x_ours), int(schedule.timesteps[i])))
    if kind == 'ddim':
      x_ref = ref.step(out_ref, t, x_ref, eta=eta, variance_noise=torch.from_numpy(noises[i])).prev_sample
      x_ours, _ = step(i, out_ours, x_ours, jnp.asarray(noises[i]))
    else:
      x_ref = ref.step(out_ref, t, x_ref).prev_sample
      x_ours, prev_x0 = step(i, out_ours, x_ours, prev_x0)
    np.testing.assert_allclose(np.asarray(x_ours), x_ref.numpy(), atol=2e-5, rtol=2e-5, err_msg=f'step {i}')


def test_dpm_second_order_matters():
  """Dropping the 2M correction (first order everywhere) must change the trajectory: the test can fail."""
  cfg = sch.SchedulerConfig.from_diffusers(SD15)
  schedule = sch.dpm_schedule(cfg, 5)
  first_order = schedule._replace(second_order=jnp.zeros_like(schedule.second_order))
  x = jnp.ones((1, 8, 8, 4))
  outs = []
  for s in (schedule, first_order):
    z, prev = x, None
    for i in range(5):
      z, prev = sch.dpm_step(cfg, s, i, jnp.tanh(z), z, prev)
    outs.append(z)
  assert np.abs(np.asarray(outs[0] - outs[1])).max() > 1e-3


def test_classifier_free_guidance_batches_once():
  calls = []

  def model_fn(x, t, ctx):
    calls.append(x.shape[0])
    return x * ctx.mean(axis=(1, 2))[:, None, None, None] + t

  x = jnp.ones((1, 2, 2, 4))
  out = sch.guided_output(model_fn, x, 3.0, jnp.full((1, 3, 5), 2.0), jnp.zeros((1, 3, 5)), 7.5)
  np.testing.assert_allclose(np.asarray(out), 3.0 + 7.5 * 2.0)
  assert calls == [2]


def test_bad_scheduler_config_is_one_line_error():
  with pytest.raises(UserError, match='prediction_type'):
    sch.SchedulerConfig.from_diffusers({**SD15, 'prediction_type': 'flow_prediction'})
  with pytest.raises(UserError, match='use_karras_sigmas'):
    sch.SchedulerConfig.from_diffusers({**SD15, 'use_karras_sigmas': True})
