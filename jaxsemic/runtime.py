"""Process-wide JAX settings for the command line (persistent compilation cache)."""

from __future__ import annotations

import os


def enable_compilation_cache() -> None:
  """Caches compiled XLA programs on disk: the second `jaxsemic compress` skips most compilation."""
  import jax
  path = os.environ.get("JAXSEMIC_XLA_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "jaxsemic", "xla"))
  if path.lower() in ("", "0", "off", "none"):
    return
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return  # read-only home: run without the cache
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
