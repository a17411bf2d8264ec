"""SEDIC's multi-stage semantic image decoder (Song et al., Sec. III-B, Algorithm 1).

Object stages j = 0..J-1 (ORAG): fresh noise, the latent condition cf_j = VAE-encoder(I_j) into the latent
ControlNet, the object's prompt through CLIP; while t > T' the latent moves against the gradient of the
cross-attention energy (eqs. 2-3), and after every step the object's mask keeps it only inside M_j,
outside it the previous stage's latent at the same step (eq. 4). Then the overall stage (no guidance, no
mask). Every choice the paper leaves open is a `DecoderConfig` field with its reason.

`decode(reference_image, texts, masks, components, cfg, seed)` takes plain arrays and strings: the padded
reference image (uint8 [H, W, 3], H and W multiples of 8 x the UNet's downsampling), the texts and the
masks already on the latent grid (bool [J, H/8, W/8]).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxsemic.diffusion import sampling
from jaxsemic.diffusion.guidance import guided_latent, token_weights
from jaxsemic.diffusion.schedulers import SchedulerConfig
from jaxsemic.diffusion.unet import cross_attention_maps
from jaxsemic.diffusion.vae import image_to_latent, latent_to_image
from jaxsemic.errors import UserError
from jaxsemic.sedic.components import Components, load_components, tiny_components  # noqa: F401 (re-exported)

TOKEN_RULES = ('name', 'all')
# How the eq. 3 gradient is computed; every value but 'exact' is a measured approximation (docs/diffusion.md).
GUIDANCE_METHODS = ('exact', 'no_controlnet_grad', 'shared_controlnet', 'one_pass')
BACKGROUNDS = ('noised_reference', 'none')


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """Decoder settings; defaults follow the paper where it says, otherwise the reason is given."""
  object_steps: int = 10  # Sec. IV-G: 10 denoising steps per object
  overall_steps: int = 20  # Sec. IV-G: 20 steps for the overall description
  # Not given by the paper. DDIM (eta 0) is a one-step solver: its whole state is the latent, so the eq. 4
  # blend replaces the complete state outside the mask. 'dpm' (DPM-Solver++(2M)) keeps its previous x0
  # prediction unblended, as blended-diffusion pipelines do.
  scheduler: str = 'ddim'
  ddim_eta: float = 0.0  # deterministic DDIM: the same seed gives the same image
  eta: float = 40.0  # eq. 3 step size, Sec. IV-A ("30-50 work well", 40 by default)
  # T' as a fraction of the training timesteps: guidance on steps with t > T'. The paper gives no value;
  # 0.5 guides the first half of the object steps (layout guidance [41] also guides only early steps, where
  # the layout forms).
  guidance_threshold: float = 0.5
  # Cross-attention layers whose maps enter eq. 2, as diffusers names or prefixes ('mid_block',
  # 'up_blocks.1'). Empty = every attn2 of the first cross-attention up block: the paper's "middle block of
  # the upsampling branch" following [41] (for SD, up_blocks.1 at 1/4 of the latent's resolution).
  guidance_layers: tuple[str, ...] = ()
  # How eq. 2 is combined over layers. The paper gives one eta for "the block"; the mean keeps eta = 40 at
  # the same strength whatever the number of layers chosen (a sum would make it 120 with SD's 3 layers).
  energy_reduce: str = 'mean'
  # dE/dz of eq. 3. 'exact' (the paper): through the ControlNet and the UNet, then the denoising step on the
  # guided latent. Approximations, faster: 'no_controlnet_grad' holds the ControlNet residuals constant in
  # dE/dz (no ControlNet backward); 'shared_controlnet' also reuses those residuals (computed at the latent
  # before guidance) in the step; 'one_pass' also reuses that forward's UNet output, applied by the solver to
  # the guided latent (one forward + a UNet backward per guided step). The last two need cfg_scale 1.
  guidance_method: str = 'exact'
  # Which tokens k of the prompt eq. 2 uses. 'name': the tokens of the object's name (found through the
  # tokenizer's offsets); 'all': every token of the prompt (for streams that do not send names).
  token_rule: str = 'name'
  # The object prompt. The paper encodes Text_d_j; the details rarely repeat the name (12 of 72 objects in
  # our Kodak descriptions), so the name is put first: its tokens always exist and lie inside 77 tokens.
  prompt_template: str = '{name}, {details}'
  # z_{-1,t}, the "previous stage" of the first object, is undefined in the paper. 'noised_reference': the
  # reference latent forward-noised to each step's level with one fixed noise draw (blended latent
  # diffusion), so outside M_0 the first stage follows the reference image. 'none': no blend in stage 0.
  first_background: str = 'noised_reference'
  # Classifier-free guidance is not mentioned by the paper; 1 = off (half the cost; the condition latent
  # already pins the image). Guidance energies always use the conditional prompt only.
  cfg_scale: float = 1.0
  negative_prompt: str = ''
  conditioning_scale: float = 1.0  # ControlNet residual scale (DiffBIR's control_scales are all 1)
  # Algorithm 1, line 3: cf_j = VAE-encoder(I_j) with I_j = VAE-decoder(z_{j-1,0}), clipped to the image range.
  # False passes z_{j-1,0} on as the condition (saves a VAE decode + encode per stage).
  vae_roundtrip: bool = True
  long_text: str = 'warn'  # 'warn' or 'error' when a prompt passes the text encoder's 77 tokens

  def validate(self) -> None:
    """One-line errors for values out of range."""
    if self.object_steps < 1 or self.overall_steps < 1:
      raise UserError('object_steps and overall_steps must be >= 1')
    if self.scheduler not in sampling.SOLVERS:
      raise UserError(f'scheduler must be one of {", ".join(sampling.SOLVERS)}, got {self.scheduler!r}')
    if self.energy_reduce not in ('mean', 'sum'):
      raise UserError(f"energy_reduce must be 'mean' or 'sum', got {self.energy_reduce!r}")
    if self.guidance_method not in GUIDANCE_METHODS:
      raise UserError(f'guidance_method must be one of {", ".join(GUIDANCE_METHODS)}, got {self.guidance_method!r}')
    if self.guidance_method in ('shared_controlnet', 'one_pass') and self.cfg_scale != 1.0:
      raise UserError(f'guidance_method {self.guidance_method!r} needs cfg_scale 1, got {self.cfg_scale}')
    if self.token_rule not in TOKEN_RULES:
      raise UserError(f'token_rule must be one of {", ".join(TOKEN_RULES)}, got {self.token_rule!r}')
    if self.first_background not in BACKGROUNDS:
      raise UserError(f'first_background must be one of {", ".join(BACKGROUNDS)}, got {self.first_background!r}')
    if not 0.0 <= self.guidance_threshold <= 1.0:
      raise UserError(f'guidance_threshold must be in [0, 1], got {self.guidance_threshold}')
    if self.long_text not in ('warn', 'error'):
      raise UserError(f"long_text must be 'warn' or 'error', got {self.long_text!r}")


class ObjectText(NamedTuple):
  """One object's name and details, as the encoder sends them."""
  name: str
  details: str


class Texts(NamedTuple):
  """Text_all and the J objects' texts (any object with `.overall` and `.objects` of `.name`/`.details` fits)."""
  overall: str
  objects: tuple[ObjectText, ...] = ()


class StageResult(NamedTuple):
  """What one stage produced: z_{j,0}, the latent after every step, eq. 2 energies (NaN when not guided)."""
  name: str
  latent: jax.Array  # [1, h, w, C]
  trajectory: jax.Array  # [n, 1, h, w, C]
  energies: jax.Array  # [n]
  guided: np.ndarray  # [n] bool
  seconds: float


class Decoded(NamedTuple):
  """The decoded image (uint8 [H, W, 3]), the final latent, every stage's result and timings in seconds."""
  image: np.ndarray
  latent: jax.Array
  stages: list[StageResult]
  seconds: dict[str, float]


class StepStatic(NamedTuple):
  """Hashable settings of a compiled stage step (changing one recompiles)."""
  solver: str
  scheduler: SchedulerConfig
  ddim_eta: float
  cfg_scale: float
  conditioning_scale: float
  layers: tuple[str, ...]
  energy_reduce: str
  guidance_method: str = 'exact'


class StageInputs(NamedTuple):
  """Per-stage arrays of a compiled step (traced, so every object stage reuses one program)."""
  schedule: Any
  context: jax.Array  # [1, L, D]
  uncond: jax.Array  # [1, L, D] (used only with CFG)
  cond: jax.Array  # [1, h, w, C] condition latent cf_j
  mask: jax.Array  # [h, w] bool: M_j of eq. 2
  keep: jax.Array  # [h, w] bool: where eq. 4 keeps this stage's latent (M_j; everywhere when not blending)
  weights: jax.Array  # [L] token weights of eq. 2
  eta: jax.Array  # []
  key: jax.Array  # DDIM eta > 0 noise


# ---- keys and noise ----

def stage_keys(seed: int, num_objects: int) -> dict[str, Any]:
  """PRNG keys derived from the seed: one per object stage, the overall stage, and the z_{-1} draw.

  Keyed by role (not by running index), so the overall stage draws the same noise whatever J is.
  """
  root = jax.random.key(seed)
  objects = jax.random.fold_in(root, 0)
  return {'objects': [jax.random.fold_in(objects, j) for j in range(num_objects)],
          'overall': jax.random.fold_in(root, 1), 'background': jax.random.fold_in(root, 2)}


def initial_noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """z_T ~ N(0, I) of a stage (Algorithm 1, line 2), from the stage key (the solver uses another branch)."""
  return jax.random.normal(jax.random.fold_in(key, 0), shape, jnp.float32)


def solver_key(key: jax.Array) -> jax.Array:
  """The stage key's branch for DDIM eta > 0 noise."""
  return jax.random.fold_in(key, 1)


# ---- texts ----

def object_prompt(cfg: DecoderConfig, obj: ObjectText) -> str:
  """The object stage's prompt from the template."""
  return cfg.prompt_template.format(name=obj.name, details=obj.details)


def check_text(components: Components, cfg: DecoderConfig, text: str, what: str) -> None:
  """Warn or fail (cfg.long_text) when a prompt passes the text encoder's length."""
  tok, length = components.tokenizer, components.text_length
  if cfg.long_text == 'error' and tok.num_tokens(text) > length:
    raise UserError(f'{what} has {tok.num_tokens(text)} tokens, more than the text encoder\'s {length}')
  tok.check_length(text, length, what)


def object_tokens(components: Components, cfg: DecoderConfig, obj: ObjectText) -> list[int]:
  """Token indices k of eq. 2 for one object (positions in the padded prompt, start token = 0)."""
  prompt, length = object_prompt(cfg, obj), components.text_length
  if cfg.token_rule == 'name':
    return components.tokenizer.phrase_indices(prompt, obj.name, length)
  n = min(components.tokenizer.num_tokens(prompt), length)
  if n <= 2:
    raise UserError(f'empty prompt for object {obj.name!r}')
  return list(range(1, n - 1))


@functools.partial(jax.jit, static_argnums=0)
def _encode_ids(text_encoder, params, ids):
  """CLIP last hidden states of token ids."""
  return text_encoder.apply({'params': params}, ids)['last_hidden_state']


def encode_texts(components: Components, texts: Sequence[str]) -> jax.Array:
  """CLIP contexts [B, 77, D] of texts padded to the encoder's length (no attention mask, as SD)."""
  ids, _ = components.tokenizer.encode(list(texts), length=components.text_length)
  return _encode_ids(components.text_encoder, components.params['text_encoder'], jnp.asarray(ids))


# ---- images ----

@functools.partial(jax.jit, static_argnums=0)
def to_latent(vae, params, image: jax.Array) -> jax.Array:
  """Image [1, H, W, 3] in [-1, 1] -> scaled latent (posterior mean, DiffBIR's `mode()`)."""
  return image_to_latent(vae, params, image)


@functools.partial(jax.jit, static_argnums=0)
def to_image(vae, params, latent: jax.Array) -> jax.Array:
  """Scaled latent -> image in [-1, 1], clipped."""
  return jnp.clip(latent_to_image(vae, params, latent), -1.0, 1.0)


def image_to_unit(image: np.ndarray) -> jax.Array:
  """uint8 [H, W, 3] -> float [1, H, W, 3] in [-1, 1]."""
  return jnp.asarray(image, jnp.float32)[None] / 127.5 - 1.0


def unit_to_image(x: jax.Array) -> np.ndarray:
  """float [1, H, W, 3] in [-1, 1] -> uint8 [H, W, 3]."""
  return np.asarray(jnp.round((jnp.clip(x[0], -1.0, 1.0) + 1.0) * 127.5)).astype(np.uint8)


# ---- the compiled steps ----

def _residuals(modules, static: StepStatic, params, z, t, text, cond):
  """The ControlNet's residuals for z at t: (down residuals, mid residual)."""
  return modules[1].apply({'params': params['controlnet']}, z, t, text, cond, static.conditioning_scale)


def _denoise(modules, static: StepStatic, params, z, t, context, residuals=None):
  """ControlNet residuals (unless given) + UNet output for z at t; context = (text context, condition latent)."""
  text, cond = context
  down, mid = _residuals(modules, static, params, z, t, text, cond) if residuals is None else residuals
  return modules[0].apply({'params': params['unet']}, z, t, text, down, mid)


def guidance_step(modules, static: StepStatic, params, z: jax.Array, t: jax.Array, stage: StageInputs,
                  residuals=None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Eq. 3 on the chosen layers with the conditional prompt: (new latent, E before the step, the UNet output at
  the old z). The ControlNet's `residuals` (computed before) are constants; without them it runs inside E,
  differentiated with 'exact' only (static.guidance_method)."""
  control = None if residuals is not None else (
      lambda z: _residuals(modules, static, params, z, t, stage.context, stage.cond))
  z, energy, out = guided_latent(modules[0], params['unet'], z, t, stage.context,
                                 stage.mask[None].astype(jnp.float32), stage.weights, static.layers, stage.eta,
                                 reduce=static.energy_reduce, control_fn=control, residuals=residuals,
                                 control_gradient=static.guidance_method == 'exact')
  return z, energy[0], out


def _model_output(modules, static: StepStatic, params, z, t, stage: StageInputs, residuals=None) -> jax.Array:
  """Algorithm 1, lines 10 / 16: the ControlNet-conditioned denoiser's output at z (CFG when static.cfg_scale
  != 1); `residuals` reuses ControlNet residuals computed before (the approximations)."""
  uncond = (stage.uncond, stage.cond) if static.cfg_scale != 1.0 else None
  model = lambda params, z, t, context: _denoise(modules, static, params, z, t, context, residuals)
  return sampling.model_output(model, params, z, t, (stage.context, stage.cond), uncond, static.cfg_scale)


def _solver_update(static: StepStatic, stage: StageInputs, i, out: jax.Array, state: sampling.State
                   ) -> sampling.State:
  """The solver's step i from the denoiser's output."""
  sampler = sampling.Sampler(static.solver, static.scheduler, stage.schedule, static.ddim_eta)
  return sampling.update(sampler, i, out, state, stage.key)


def _guided(static: StepStatic, guided: bool, z: jax.Array, guide: Callable, unguided_out: Callable):
  """guide(z) -> (z', E, out) if `guided`, else (z, NaN, unguided_out(z)); `out` only for 'one_pass'."""
  if guided:
    z, energy, out = guide(z)
    return z, energy, out if static.guidance_method == 'one_pass' else None
  nan = jnp.full((), jnp.nan, z.dtype)
  return z, nan, unguided_out(z) if static.guidance_method == 'one_pass' else None


def step_output(modules, static: StepStatic, params, i, z: jax.Array, guided: bool, stage: StageInputs
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """What an object step gives its solver: (z after eq. 3 if `guided` (t > T'), E before it or NaN, the
  denoiser's output for the solver), by static.guidance_method."""
  t = stage.schedule.timesteps[i]
  residuals = None
  if static.guidance_method in ('shared_controlnet', 'one_pass'):
    residuals = _residuals(modules, static, params, z, t, stage.context, stage.cond)
  z, energy, out = _guided(static, guided, z, lambda z: guidance_step(modules, static, params, z, t, stage, residuals),
                           lambda z: _denoise(modules, static, params, z, t, (stage.context, stage.cond), residuals))
  if out is None:
    out = _model_output(modules, static, params, z, t, stage, residuals)
  return z, energy, out


def object_step(modules, static: StepStatic, params, i, state: sampling.State, per_step, stage: StageInputs):
  """One ORAG step: guidance if t > T' (eq. 3), the denoising step, the blend with the previous stage (eq. 4).

  per_step = (guided: a host bool, background: the previous stage's latent after this step [1, h, w, C]).
  Returns (state, (blended latent, energy before the guidance step or NaN)). `guided` picks one of two
  compiled programs: a lax.cond around the guidance made the guided step 25 % slower on XLA:CPU (SD-1.5 size:
  12.11 s against 9.73 s, benchmarks/diffusion_step.py, docs/diffusion.md).
  """
  guided, background = per_step
  return object_step_program(modules, static, bool(guided), params, i, state, background, stage)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def object_step_program(modules, static: StepStatic, guided: bool, params, i, state: sampling.State, background,
                        stage: StageInputs):
  """The compiled program `object_step` runs for a static `guided` (its `.lower` gives XLA's memory and cost)."""
  z, energy, out = step_output(modules, static, params, i, state.z, guided, stage)
  state = _solver_update(static, stage, i, out, state._replace(z=z))
  blended = jnp.where(stage.keep[None, :, :, None], state.z, background)  # eq. 4 with a binary M_j
  return state._replace(z=blended), (blended, energy)


@functools.partial(jax.jit, static_argnums=(0, 1))
def overall_step(modules, static: StepStatic, params, i, state: sampling.State, per_step, stage: StageInputs):
  """One step of the overall stage (Algorithm 1, line 16): no guidance, no mask."""
  del per_step
  out = _model_output(modules, static, params, state.z, stage.schedule.timesteps[i], stage)
  state = _solver_update(static, stage, i, out, state)
  return state, (state.z, jnp.full((), jnp.nan, state.z.dtype))


# ---- stages ----

def guidance_layer_names(components: Components, requested: Sequence[str] = ()) -> tuple[str, ...]:
  """Resolve DecoderConfig.guidance_layers (names or prefixes; empty = the first cross-attention up block)."""
  unet = components.unet
  f = components.latent_multiple
  z, ctx = jnp.zeros((1, f, f, unet.config.in_channels)), jnp.zeros((1, 1, unet.config.cross_attention_dim))
  maps = jax.eval_shape(lambda z: cross_attention_maps(unet, components.params['unet'], z, 1, ctx)[1], z)
  known = sorted(maps)
  if not requested:
    first = next((i for i, b in enumerate(unet.config.up_block_types) if b.startswith('CrossAttn')), None)
    if first is None:
      raise UserError('the UNet has no cross-attention up block to guide')
    requested = (f'up_blocks.{first}',)
  names = tuple(n for n in known if any(n == r or n.startswith(r + '.') for r in requested))
  if not names:
    raise UserError(f'no cross-attention layer matches {", ".join(requested)}; known: {", ".join(known)}')
  return names


def guided_steps(sampler: sampling.Sampler, cfg: DecoderConfig) -> np.ndarray:
  """Algorithm 1, line 7: which steps are guided (t > T', T' = guidance_threshold x training timesteps)."""
  threshold = cfg.guidance_threshold * sampler.config.num_train_timesteps
  return (sampler.timesteps > threshold) & (cfg.eta != 0.0)


def forward_noised(sampler: sampling.Sampler, x0: jax.Array, noise: jax.Array) -> jax.Array:
  """x0 noised to the level after every step of `sampler`, one fixed noise: [n, *x0.shape]."""
  a, s = sampling.levels_after(sampler)
  return a[:, None, None, None, None] * x0[None] + s[:, None, None, None, None] * noise[None]


def _run_stage(step, modules, static, params, stage: StageInputs, z_T, per_step, num_steps, name: str,
               on_step) -> StageResult:
  """Run one stage's compiled step over its schedule and time it."""
  start = time.perf_counter()
  state, (trajectory, energies) = sampling.run(
      lambda i, s, x: step(modules, static, params, i, s, x, stage), sampling.initial_state(z_T), num_steps,
      per_step, on_step)
  jax.block_until_ready(state.z)
  guided = np.asarray(per_step[0]) if per_step is not None else np.zeros((num_steps,), bool)
  return StageResult(name, state.z, trajectory, energies, guided, time.perf_counter() - start)


def step_static(components: Components, cfg: DecoderConfig, layers: tuple[str, ...]) -> StepStatic:
  """The compiled steps' static settings from a config."""
  return StepStatic(cfg.scheduler, components.scheduler, float(cfg.ddim_eta), float(cfg.cfg_scale),
                    float(cfg.conditioning_scale), layers, cfg.energy_reduce, cfg.guidance_method)


def decode(reference_image: np.ndarray, texts: Texts, masks: np.ndarray, components: Components,
           cfg: DecoderConfig = DecoderConfig(), seed: int = 0,
           on_stage: Callable[[str, int], Callable | None] | None = None) -> Decoded:
  """Algorithm 1: J object stages then the overall stage; returns the image, latents and stage timings.

  reference_image: uint8 [H, W, 3] (the padded reference Ĩ_0); texts: Text_all and the J objects' name and
  details (`Texts`, or any object with those attributes, e.g. the encoder's descriptions); masks: bool
  [J, H/8, W/8] on the latent grid. `on_stage(name, num_steps)` is called before each stage and
  may return `on_step(i, state)` for a progress bar.
  """
  cfg.validate()
  start = time.perf_counter()
  overall = texts.overall
  objects = [ObjectText(o.name, o.details) if hasattr(o, 'details') else ObjectText(*o) for o in texts.objects]
  image = np.asarray(reference_image)
  f, m = components.vae_factor, components.latent_multiple
  if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
    raise UserError(f'reference image must be uint8 [H, W, 3], got {image.dtype} {image.shape}')
  if image.shape[0] % (f * m) or image.shape[1] % (f * m):
    raise UserError(f'reference image sides must be multiples of {f * m} (pad it), got {image.shape[:2]}')
  h, w = image.shape[0] // f, image.shape[1] // f
  masks = np.asarray(masks)
  if masks.shape != (len(objects), h, w) or masks.dtype != bool:
    raise UserError(f'masks must be bool [{len(objects)}, {h}, {w}] (objects, latent grid), '
                    f'got {masks.dtype} {masks.shape}')

  prompts = [object_prompt(cfg, o) for o in objects]
  for j, p in enumerate(prompts):
    check_text(components, cfg, p, f'object {j + 1} prompt')
  check_text(components, cfg, overall, 'overall description')
  tokens = [object_tokens(components, cfg, o) for o in objects]
  contexts = encode_texts(components, prompts + [overall, cfg.negative_prompt])
  uncond = contexts[-1:]
  layers = guidance_layer_names(components, cfg.guidance_layers) if objects else ()
  static = step_static(components, cfg, layers)
  modules = (components.unet, components.controlnet)
  params = {k: components.params[k] for k in ('unet', 'controlnet')}
  vae, vae_params = components.vae, components.params['vae']
  keys = stage_keys(seed, len(objects))
  shape = (1, h, w, components.unet.config.in_channels)
  reference_latent = to_latent(vae, vae_params, image_to_unit(image))
  cond = reference_latent
  seconds = {'prepare': time.perf_counter() - start}
  stages: list[StageResult] = []

  obj_sampler = sampling.make_sampler(components.scheduler, cfg.scheduler, cfg.object_steps, cfg.ddim_eta)
  guided = guided_steps(obj_sampler, cfg)
  if cfg.first_background == 'noised_reference':
    background = forward_noised(obj_sampler, reference_latent, initial_noise(keys['background'], shape))
  else:
    background = jnp.zeros((cfg.object_steps,) + shape)
  for j, obj in enumerate(objects):
    name = f'object_{j + 1}'
    on_step = on_stage(name, cfg.object_steps) if on_stage else None
    keep = np.ones_like(masks[j]) if j == 0 and cfg.first_background == 'none' else masks[j]
    stage = StageInputs(obj_sampler.schedule, contexts[j:j + 1], uncond, cond, jnp.asarray(masks[j]),
                        jnp.asarray(keep), token_weights(tokens[j], components.text_length),
                        jnp.asarray(cfg.eta, jnp.float32), solver_key(keys['objects'][j]))
    result = _run_stage(object_step, modules, static, params, stage, initial_noise(keys['objects'][j], shape),
                        (np.asarray(guided), background), cfg.object_steps, name, on_step)
    background = result.trajectory
    t0 = time.perf_counter()
    cond = _next_condition(vae, vae_params, result.latent, cfg)
    stages.append(result._replace(seconds=result.seconds + time.perf_counter() - t0))
    seconds[name] = stages[-1].seconds

  sampler = sampling.make_sampler(components.scheduler, cfg.scheduler, cfg.overall_steps, cfg.ddim_eta)
  on_step = on_stage('overall', cfg.overall_steps) if on_stage else None
  everywhere = jnp.ones((h, w), bool)
  stage = StageInputs(sampler.schedule, contexts[-2:-1], uncond, cond, everywhere, everywhere,
                      jnp.zeros((components.text_length,)), jnp.zeros(()), solver_key(keys['overall']))
  result = _run_stage(overall_step, modules, static, params, stage, initial_noise(keys['overall'], shape), None,
                      cfg.overall_steps, 'overall', on_step)
  t0 = time.perf_counter()
  out = unit_to_image(to_image(vae, vae_params, result.latent))
  stages.append(result._replace(seconds=result.seconds + time.perf_counter() - t0))
  seconds['overall'] = stages[-1].seconds
  seconds['total'] = time.perf_counter() - start
  return Decoded(out, result.latent, stages, seconds)


def _next_condition(vae, vae_params, latent: jax.Array, cfg: DecoderConfig) -> jax.Array:
  """cf_{j+1} = VAE-encoder(I_{j+1}), I_{j+1} = VAE-decoder(z_{j,0}) clipped (Algorithm 1, lines 3 and 19)."""
  if not cfg.vae_roundtrip:
    return latent
  return to_latent(vae, vae_params, to_image(vae, vae_params, latent))
