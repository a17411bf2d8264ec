"""Cross-attention energy and backward guidance of SEDIC's ORAG (Sec. III-B, eqs. 2-3).

E(A, M, k) = (1 - sum_{m in M} A_{m,k} / sum_m A_{m,k})^2, with A the cross-attention map of a UNet
layer (averaged over heads), M the object mask at the map's resolution and k the object's tokens;
the latent is then moved against dE/dz (eq. 3).
"""

from collections.abc import Callable, Sequence

import chex
import jax
import jax.numpy as jnp

from jaxsemic.diffusion.unet import UNet2DConditionModel, cross_attention_maps


def attention_energy(probs: jax.Array, mask: jax.Array, tokens: Sequence[int]) -> jax.Array:
  """Eq. 2 for one layer, averaged over the tokens: energies [B].

  probs: [B, heads, h*w, L] cross-attention probabilities; mask: [B, h, w] in [0, 1] at the map's
  resolution (resize it to (h, w) first); tokens: indices k of the object's words in the prompt.
  """
  return weighted_attention_energy(probs, mask, token_weights(tokens, probs.shape[-1]))


def token_weights(tokens: Sequence[int], length: int) -> jax.Array:
  """Token indices -> weights [length] (1 at each index), the traceable form of a token choice."""
  return jnp.zeros((length,), jnp.float32).at[jnp.asarray(tokens, jnp.int32)].add(1.0)


def weighted_attention_energy(probs: jax.Array, mask: jax.Array, weights: jax.Array) -> jax.Array:
  """Eq. 2 for one layer, a weighted mean over tokens: energies [B]; weights [L] or [B, L], >= 0.

  With 0/1 weights this is `attention_energy` on the tokens of weight 1; as an array argument the token
  choice can change between calls of one compiled function.
  """
  chex.assert_rank(probs, 4)
  chex.assert_rank(mask, 3)
  chex.assert_axis_dimension(probs, 2, mask.shape[1] * mask.shape[2])
  a = probs.mean(axis=1)  # [B, h*w, L]
  m = mask.reshape(mask.shape[0], -1, 1).astype(a.dtype)
  ratio = (a * m).sum(axis=1) / a.sum(axis=1)  # [B, L]
  w = jnp.broadcast_to(jnp.asarray(weights, a.dtype), ratio.shape)
  return (w * (1.0 - ratio) ** 2).sum(axis=-1) / w.sum(axis=-1)


def layers_energy(maps: dict[str, jax.Array], mask: jax.Array, weights: jax.Array, aspect: float,
                  reduce: str = 'sum') -> jax.Array:
  """Eq. 2 on several layers' maps ({name: probs}), combined by 'sum' or 'mean': energies [B].

  `mask` [B, H, W] is resized to each map's grid (`aspect` = H / W of the latent).
  """
  if reduce not in ('sum', 'mean'):
    raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
  per_layer = [weighted_attention_energy(p, resize_mask(mask, p.shape[2], aspect), weights) for p in maps.values()]
  total = sum(per_layer)
  return total / len(per_layer) if reduce == 'mean' else total


def resize_mask(mask: jax.Array, hw: int, aspect: float) -> jax.Array:
  """Mask [B, H, W] -> [B, h, w] with h * w == hw and h / w == aspect (the latent's), bilinear."""
  w = round((hw / aspect) ** 0.5)
  h = hw // w
  return jax.image.resize(mask.astype(jnp.float32), (mask.shape[0], h, w), 'linear')


def denoiser_energy(unet: UNet2DConditionModel, params, latent: jax.Array, timestep: jax.Array,
                    context: jax.Array, mask: jax.Array, weights: jax.Array, layers: Sequence[str],
                    reduce: str = 'sum', control_fn: Callable | None = None, control_gradient: bool = True,
                    residuals: tuple | None = None) -> tuple[jax.Array, jax.Array]:
  """Eq. 2 on `layers` of the UNet run at `latent`: (energies [B], the UNet's output).

  `weights` are the token weights [L] or [B, L] (`token_weights`); `control_fn(z) -> (down residuals, mid
  residual)` adds a ControlNet's residuals, differentiable through z unless `control_gradient=False` (then
  constants: dE/dz skips the ControlNet's backward pass, an approximation); `residuals` gives residuals computed
  beforehand (constants) instead.
  """
  if residuals is not None and control_fn is not None:
    raise ValueError('give control_fn or residuals, not both')
  chex.assert_shape(weights, (..., context.shape[1]))
  found = residuals if control_fn is None else control_fn(latent)
  if found is not None and not control_gradient:
    found = jax.lax.stop_gradient(found)
  extra = {} if found is None else dict(zip(('down_residuals', 'mid_residual'), found))
  out, maps = cross_attention_maps(unet, params, latent, timestep, context, layers, **extra)
  return layers_energy(maps, mask, weights, latent.shape[1] / latent.shape[2], reduce), out


def guided_latent(unet: UNet2DConditionModel, params, latent: jax.Array, timestep: jax.Array,
                  context: jax.Array, mask: jax.Array, weights: jax.Array, layers: Sequence[str],
                  eta: float | jax.Array, **energy_options) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Eq. 3: z <- z - eta * dE/dz with E = `denoiser_energy(..., **energy_options)` (reduce, control_fn,
  control_gradient, residuals); returns (new latent, energies [B] at the old latent, the UNet's output there)."""

  def energy(z):
    per_example, out = denoiser_energy(unet, params, z, timestep, context, mask, weights, layers, **energy_options)
    return per_example.sum(), (per_example, out)  # examples are independent: d(sum)/dz_b = dE_b/dz_b

  (_, (energies, out)), grad = jax.value_and_grad(energy, has_aux=True)(latent)
  return latent - eta * grad, energies, out
