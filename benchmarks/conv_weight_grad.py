"""Where our training step loses to CompressAI on CPU: XLA:CPU's convolution weight gradient.

  python benchmarks/conv_weight_grad.py

For the polyphase form of a g_s transposed conv (`layers.TransposedConv`: a 3x3 conv, 128 -> 4*128 channels;
defaults batch 2 at 64x64, a quarter of the widest hyperprior layer's work at batch 8), prints the seconds of the forward conv, of XLA's input and weight
gradients, and of the weight gradient computed as im2col patches x output gradient (one matmul), which is
exact (checked here) and several times faster. Candidate fix for `jaxsemic.layers.conv` (a custom_vjp conv),
left to the layers' owner; see the issue-6 report.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

DN = ("NHWC", "HWIO", "NHWC")


def conv(x, w):
  k = w.shape[0]
  return jax.lax.conv_general_dilated(x, w, (1, 1), ((k // 2, k // 2),) * 2, dimension_numbers=DN)


def weight_grad_patches(x, g, k):
  """d sum(conv(x, w) * g) / dw as patches^T @ g: [k, k, cin, cout]."""
  p = jax.lax.conv_general_dilated_patches(x, (k, k), (1, 1), ((k // 2, k // 2),) * 2, dimension_numbers=DN)
  gw = jnp.einsum("bhwp,bhwo->po", p, g)  # patch features ordered (cin, kh, kw)
  return gw.reshape(x.shape[-1], k, k, -1).transpose(1, 2, 0, 3)


def seconds(fn, *args, repeats=1):
  fn = jax.jit(fn)
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return sorted(times)[len(times) // 2]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--cin", type=int, default=128)
  parser.add_argument("--cout", type=int, default=512)
  args = parser.parse_args()
  kx, kw, kg = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(kx, (args.batch, args.size, args.size, args.cin))
  w = 0.01 * jax.random.normal(kw, (3, 3, args.cin, args.cout))
  g = jax.random.normal(kg, (args.batch, args.size, args.size, args.cout))
  vjp = lambda x, w, g: jax.vjp(conv, x, w)[1](g)
  xla_w = jax.jit(lambda x, w, g: vjp(x, w, g)[1])(x, w, g)
  ours_w = jax.jit(weight_grad_patches, static_argnums=2)(x, g, 3)
  err = float(jnp.abs(xla_w - ours_w).max() / jnp.abs(xla_w).max())
  t_fwd = seconds(conv, x, w)
  t_dx = seconds(lambda x, w, g: vjp(x, w, g)[0], x, w, g)
  t_dw = seconds(lambda x, w, g: vjp(x, w, g)[1], x, w, g)
  t_patch = seconds(lambda x, g: weight_grad_patches(x, g, 3), x, g)
  print(f"3x3 conv {args.cin}->{args.cout} at {args.size}^2, batch {args.batch} (CPU, shared machine)")
  print(f"forward {t_fwd:.3f}s | XLA grad x {t_dx:.3f}s | XLA grad w {t_dw:.3f}s | "
        f"patches grad w {t_patch:.3f}s ({t_dw / t_patch:.1f}x faster, rel. error {err:.1e})")


if __name__ == "__main__":
  main()
