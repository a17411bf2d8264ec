"""Convolutions with PyTorch/CompressAI padding, and upsampling without lhs-dilated convolutions.

XLA:CPU computes the weight gradient of `nn.ConvTranspose` (an lhs-dilated convolution) ~60x slower than a
plain convolution, so every transposed convolution here is written in polyphase form: stride-1 convolutions
producing the s*s output phases, interleaved by depth-to-space. The kernel is stored in the transposed-conv
layout [k, k, in, out] so PyTorch `ConvTranspose2d` weights map onto it by a transpose only.

XLA:CPU computes the input gradient of a strided convolution (an lhs-dilated convolution) ~2x slower than the
stride^2 stride-1 phase convolutions it splits into, so `conv2d` carries a custom VJP for strided convolutions
on CPU that computes it that way and keeps XLA's weight gradient (`JAXSEMIC_CONV_WGRAD=auto`, the default).
`taps` also replaces the weight gradient by one [cin, cout] matmul per kernel tap: faster on the Xeon where it
was written, 2-2.6x slower than XLA's on the AMD EPYC measured since (each tap's strided slice of x is a copy, and
the copies are memory-bound). `xla` is XLA's own VJP everywhere (`benchmarks/conv_weight_grad.py` measures all
three per layer shape). `auto` on CPU also gives `TransposedConv` one weight gradient, that of the strided conv
which is its adjoint, instead of the s*s phase convs' (`transposed_weight_grad`): with the trainer's CPU
microbatches the bmshj2018 step took 1.128 s against 1.234 s (min of 5, interleaved).
"""

from __future__ import annotations

import functools
import os

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Padding = tuple[tuple[int, int], tuple[int, int]]
_DN = ("NHWC", "HWIO", "NHWC")


def xla_conv(x: Array, w: Array, stride: int, padding: Padding) -> Array:
  """XLA's own NHWC x HWIO convolution (its own VJP)."""
  return jax.lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=_DN)


def weight_grad_taps(x: Array, g: Array, kh: int, kw: int, stride: int, padding: Padding) -> Array:
  """d<conv(x, w), g>/dw as one [cin, cout] matmul per kernel tap; returns [kh, kw, cin, cout]."""
  xp = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  b, ho, wo, _ = g.shape
  if x.shape[-1] < 16:  # thin inputs (RGB): one im2col matmul is faster than k*k tiny ones
    patches = jax.lax.conv_general_dilated_patches(xp, (kh, kw), (stride, stride), "VALID", dimension_numbers=_DN)
    gw = jnp.einsum("bhwp,bhwo->po", patches, g, preferred_element_type=jnp.float32)
    return gw.reshape(x.shape[-1], kh, kw, -1).transpose(1, 2, 0, 3)
  taps = []
  for i in range(kh):
    for j in range(kw):
      xs = jax.lax.slice(xp, (0, i, j, 0), (b, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, xp.shape[3]),
                         (1, stride, stride, 1))
      taps.append(jnp.einsum("bhwc,bhwo->co", xs, g, preferred_element_type=jnp.float32))
  return jnp.stack(taps).reshape(kh, kw, x.shape[-1], g.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _tap_conv(x: Array, w: Array, stride: int, padding: Padding) -> Array:
  return xla_conv(x, w, stride, padding)


def _tap_conv_fwd(x, w, stride, padding):
  return xla_conv(x, w, stride, padding), (x, w)


def strided_input_grad(g: Array, w: Array, stride: int, padding: Padding, in_hw: tuple[int, int]) -> Array:
  """d<conv(x, w), g>/dx of a strided conv as stride^2 stride-1 phase convs of g (no lhs-dilated conv).

  x[s*i' + r] receives g[i] w[t] where s*i + t - pad_lo = s*i' + r: the transposed conv of `polyphase_index`
  with padding pad_lo, cropped or zero-padded to x's size.
  """
  kt = w.transpose(0, 1, 3, 2)  # maps g's channels back to x's
  # Rows of x past stride * (output rows) can still receive gradient (large pad_hi): extend g by zero rows.
  extra = [max(-(-in_hw[a] // stride) - g.shape[1 + a], 0) for a in (0, 1)]
  g = jnp.pad(g, ((0, 0), (0, extra[0]), (0, extra[1]), (0, 0)))
  per_axis = [polyphase_index(w.shape[a], stride, padding[a][0]) for a in (0, 1)]
  y = phase_convs(g, kt, per_axis[0], per_axis[1], vjp="xla")[:, :in_hw[0], :in_hw[1]]
  return jnp.pad(y, ((0, 0), (0, in_hw[0] - y.shape[1]), (0, in_hw[1] - y.shape[2]), (0, 0)))


def phase_convs(x: Array, kernel: Array, phases_y, phases_x, vjp: str = "auto") -> Array:
  """Transposed conv as one stride-1 conv per output phase (ry, rx), interleaved: [B,H,W,in] -> [B,H*s,W*s,out]."""
  s = len(phases_y)
  rows = []
  for ty, ylo, yhi in phases_y:
    cols = []
    for tx, xlo, xhi in phases_x:
      if ty and tx:
        w = kernel[np.asarray(ty)][:, np.asarray(tx)]
        cols.append(conv2d(x, w, 1, ((-ylo, yhi), (-xlo, xhi)), vjp=vjp))
      else:  # a phase no tap reaches
        cols.append(jnp.zeros(x.shape[:3] + kernel.shape[3:], x.dtype))
    rows.append(jnp.stack(cols, axis=3))  # [B, H, W, rx, C]
  y = jnp.stack(rows, axis=2)  # [B, H, ry, W, rx, C]
  b, h, _, w_, _, c = y.shape
  return y.reshape(b, h * s, w_ * s, c)


def _tap_conv_bwd(stride, padding, res, g):
  return _custom_bwd(stride, padding, True, res, g)


def _custom_bwd(stride, padding, taps, res, g):
  """Phase-conv input gradient when strided; tap-matmul weight gradient if `taps` (and >= 32 outputs)."""
  x, w = res
  if stride > 1:
    dx = strided_input_grad(g, w, stride, padding, x.shape[1:3])
  else:
    dx = jax.vjp(lambda x_: xla_conv(x_, w, stride, padding), x)[1](g)[0]
  # Tap matmuls are memory-bound on x: below 32 output channels XLA's own weight gradient is faster.
  if taps and w.shape[-1] >= 32:
    dw = weight_grad_taps(x, g, w.shape[0], w.shape[1], stride, padding)
  else:
    dw = jax.vjp(lambda w_: xla_conv(x, w_, stride, padding), w)[1](g)[0]
  return dx.astype(x.dtype), dw.astype(w.dtype)


_tap_conv.defvjp(_tap_conv_fwd, _tap_conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _phase_conv(x: Array, w: Array, stride: int, padding: Padding) -> Array:
  return xla_conv(x, w, stride, padding)


def _phase_conv_bwd(stride, padding, res, g):
  return _custom_bwd(stride, padding, False, res, g)


_phase_conv.defvjp(_tap_conv_fwd, _phase_conv_bwd)


def _vjp_mode() -> str:
  """`JAXSEMIC_CONV_WGRAD` resolved for this backend: taps, phase (CPU's auto) or xla."""
  mode = os.environ.get("JAXSEMIC_CONV_WGRAD", "auto")
  if mode not in ("auto", "taps", "xla"):
    raise ValueError(f"JAXSEMIC_CONV_WGRAD must be auto, taps or xla, not {mode!r}")
  if mode == "auto":
    return "phase" if jax.default_backend() == "cpu" else "xla"
  return mode


def conv2d(x: Array, w: Array, stride: int = 1, padding: Padding | None = None, vjp: str = "auto") -> Array:
  """NHWC x HWIO convolution (padding k//2 by default) whose gradients are fast on XLA:CPU."""
  chex.assert_rank([x, w], 4)
  if padding is None:
    padding = ((w.shape[0] // 2,) * 2, (w.shape[1] // 2,) * 2)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  if any(p < 0 for pair in padding for p in pair):  # negative padding crops the input
    h, w_in = x.shape[1:3]
    (t, bo), (l, r) = padding
    x = x[:, max(-t, 0):h - max(-bo, 0), max(-l, 0):w_in - max(-r, 0)]
    padding = ((max(t, 0), max(bo, 0)), (max(l, 0), max(r, 0)))
  mode = _vjp_mode() if vjp != "xla" else "xla"
  if mode == "taps":
    return _tap_conv(x, w, stride, padding)
  if mode == "phase" and stride > 1:  # stride 1: XLA's VJP is what the custom one would compute
    return _phase_conv(x, w, stride, padding)
  return xla_conv(x, w, stride, padding)


def _flax_conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                               dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
  """`lax.conv_general_dilated` signature for `nn.Conv`, routed to `conv2d` (2-D, undilated, ungrouped)."""
  plain = (len(window_strides) == 2 and window_strides[0] == window_strides[1] and feature_group_count == 1
           and all(d in (None, 1) for d in (lhs_dilation or ()) + (rhs_dilation or ())) and not kwargs
           and not isinstance(padding, str))
  if not plain:
    return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **kwargs)
  return conv2d(lhs, rhs, window_strides[0], padding)


class Conv(nn.Module):
  """k x k convolution with symmetric padding k//2 (PyTorch's `Conv2d(..., padding=k//2)`)."""

  features: int
  kernel_size: int = 3
  stride: int = 1
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    p = self.kernel_size // 2
    return nn.Conv(self.features, (self.kernel_size,) * 2, strides=(self.stride,) * 2,
                   padding=((p, p), (p, p)), use_bias=self.use_bias, dtype=x.dtype,  # input's dtype
                   conv_general_dilated=_flax_conv_general_dilated, name="conv")(x)


def depth_to_space(x: Array, r: int) -> Array:
  """[B, H, W, C*r*r] -> [B, H*r, W*r, C], channel order (c, i, j) as PyTorch's `pixel_shuffle`."""
  b, h, w, c = x.shape
  chex.assert_equal(c % (r * r), 0)
  x = x.reshape(b, h, w, c // (r * r), r, r)
  x = x.transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(b, h * r, w * r, c // (r * r))


@functools.lru_cache(maxsize=None)
def polyphase_index(k: int, stride: int, padding: int) -> tuple[tuple[tuple[int, ...], int, int], ...]:
  """Tap map of a 1-D transposed conv split into its `stride` output phases.

  For output o = stride*i + r, `ConvTranspose` sums x[j] * w[t] over o = stride*j - padding + t, i.e.
  j = i + d with d = (r + padding - t) / stride. Returns, per phase r, (taps, d_lo, d_hi): the kernel taps t
  ordered by d = d_lo..d_hi (consecutive), so phase r is a plain correlation of x with w[taps] padded by
  (-d_lo, d_hi). The phases together use each of the k taps once: no multiply by an inserted zero.
  """
  phases = []
  for r in range(stride):
    by_d = {(r + padding - t) // stride: t for t in range(k) if (r + padding - t) % stride == 0}
    if not by_d:  # e.g. k=1, s=2: this phase receives nothing
      phases.append(((), 0, -1))
      continue
    lo, hi = min(by_d), max(by_d)
    phases.append((tuple(by_d[d] for d in range(lo, hi + 1)), lo, hi))
  return tuple(phases)


class TransposedConv(nn.Module):
  """`ConvTranspose2d(k, stride, padding=k//2, output_padding=stride-1)` computed as stride^2 phase convs.

  Output size is exactly stride * input size. Phase (ry, rx) is a small stride-1 conv with the taps of w that
  land on it (3x3, 3x2, 2x3, 2x2 for k=5, s=2), so the work equals the transposed conv's and no lhs-dilated
  conv appears in either pass. Below 16 output channels one conv over the common window is faster. The
  parameter `kernel` has the shape [k, k, in, out], equal to PyTorch's weight [in, out, k, k] transposed by
  (2, 3, 0, 1).
  """

  features: int
  kernel_size: int = 5
  stride: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k, s, cin = self.kernel_size, self.stride, x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(in_axis=-1, out_axis=-2),
                        (k, k, cin, self.features)).astype(x.dtype)
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    phases = polyphase_index(k, s, k // 2)
    if any(not taps for taps, _, _ in phases):
      raise ValueError(f"a {k}x{k} stride-{s} transposed conv leaves output phases empty")
    if self.features < 16:  # few outputs (e.g. RGB): one conv to s*s*out channels is faster on XLA:CPU
      return _window_form(x, kernel, phases, s) + bias.astype(x.dtype)
    if _vjp_mode() == "phase":
      return _transposed_conv(x, kernel, s) + bias.astype(x.dtype)
    return _phase_form(x, kernel, s) + bias.astype(x.dtype)


def transposed_weight_grad(x: Array, g: Array, k: int, s: int) -> Array:
  """d<tconv(x, w), g>/dw ([k, k, in, out]) as the weight gradient of the strided conv of g that is its adjoint.

  dw[t, u, i, o] = sum x[b, m, n, i] g[b, s*m + t - k//2, s*n + u - k//2, o]: the weight gradient of
  conv(g, v, stride s, padding k//2) with x as its output gradient, transposed to [k, k, in, out].
  """
  p = k // 2
  pad = ((p, k - p - s), (p, k - p - s))  # as many output rows as x has
  zero = jnp.zeros((k, k) + g.shape[-1:] + x.shape[-1:], g.dtype)
  dv = jax.vjp(lambda v: xla_conv(g, v, s, pad), zero)[1](x.astype(g.dtype))[0]
  return dv.transpose(0, 1, 3, 2)


def _phase_form(x: Array, kernel: Array, s: int) -> Array:
  phases = polyphase_index(kernel.shape[0], s, kernel.shape[0] // 2)
  return phase_convs(x, kernel, phases, phases)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _transposed_conv(x: Array, kernel: Array, s: int) -> Array:
  """The phase convs of a k x k stride-s transposed conv, with `transposed_weight_grad` as weight gradient."""
  return _phase_form(x, kernel, s)


def _transposed_conv_fwd(x, kernel, s):
  return _phase_form(x, kernel, s), (x, kernel)


def _transposed_conv_bwd(s, res, g):
  x, kernel = res
  dx = jax.vjp(lambda x_: _phase_form(x_, kernel, s), x)[1](g)[0]  # linear in x: its forward is dropped
  return dx, transposed_weight_grad(x, g, kernel.shape[0], s).astype(kernel.dtype)


_transposed_conv.defvjp(_transposed_conv_fwd, _transposed_conv_bwd)


def _window_form(x: Array, kernel: Array, phases, s: int) -> Array:
  """All phases as one conv over their common tap window (zeros where a phase has no tap) + depth-to-space."""
  lo, hi = min(p[1] for p in phases), max(p[2] for p in phases)
  win, (cin, cout) = hi - lo + 1, kernel.shape[2:]
  tap = np.zeros((win, s), np.int32)
  valid = np.zeros((win, s), bool)
  for r, (taps, plo, _) in enumerate(phases):
    tap[plo - lo:plo - lo + len(taps), r] = taps
    valid[plo - lo:plo - lo + len(taps), r] = True
  w = kernel[tap[:, None, :, None], tap[None, :, None, :]]  # [win, win, ry, rx, cin, out]
  mask = (valid[:, None, :, None] & valid[None, :, None, :])[..., None, None]
  w = jnp.where(mask, w, 0).transpose(0, 1, 4, 5, 2, 3).reshape(win, win, cin, cout * s * s)
  return depth_to_space(conv2d(x, w, 1, ((-lo, hi), (-lo, hi))), s)


class SubpelConv(nn.Module):
  """Sub-pixel convolution (Shi et al. 2016): conv to out*r*r channels, then pixel shuffle."""

  features: int
  kernel_size: int = 3
  upscale: int = 2

  @nn.compact
  def __call__(self, x: Array) -> Array:
    y = Conv(self.features * self.upscale ** 2, self.kernel_size, name="conv")(x)
    return depth_to_space(y, self.upscale)
