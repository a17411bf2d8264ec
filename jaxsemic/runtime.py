"""Process-wide JAX settings and on-disk caches that make a second `jaxsemic compress` start fast.

- `enable_compilation_cache`: compiled XLA programs in ~/.cache/jaxsemic/xla (every program, however quick to
  compile: a warm call then compiles nothing).
- `persistent_jit`: the codec's jitted functions, their executables kept by our own key, so a warm process
  neither traces nor lowers the model.
- `cached_arrays`: small derived arrays (a model's parameter shapes, the text vector of a caption).
Both are keyed by their inputs and by `code_fingerprint()`, so a change to jaxsemic's code or to jax/flax never
reuses an entry. Measured in the README ("Using the codec").
Also `use_huge_pages`: the trainer re-runs itself with glibc backing large blocks by huge pages, so XLA:CPU's
per-call buffers stop page-faulting (docs/training.md).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from typing import Callable, Iterator

import numpy as np

OFF = ("", "0", "off", "none")

HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"
_THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def huge_pages_env(environ: dict[str, str]) -> dict[str, str] | None:
  """`environ` with glibc's huge-page tunable added, or None when there is nothing to do (already set, turned off
  with JAXSEMIC_HUGE_PAGES=0, not glibc >= 2.35, or transparent huge pages off in the kernel)."""
  tunables = environ.get("GLIBC_TUNABLES", "")
  if "glibc.malloc.hugetlb" in tunables or environ.get("JAXSEMIC_HUGE_PAGES", "1").lower() in OFF:
    return None
  try:
    name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
    with open(_THP_SETTING, encoding="ascii") as f:
      thp = f.read()
  except (AttributeError, ValueError, OSError):  # not Linux, not glibc, no THP
    return None
  if name != "glibc" or tuple(map(int, version.split(".")[:2])) < (2, 35) or "[never]" in thp:
    return None
  return {**environ, "GLIBC_TUNABLES": f"{tunables}:{HUGE_PAGES_TUNABLE}" if tunables else HUGE_PAGES_TUNABLE}


def use_huge_pages() -> None:
  """Re-runs this process (same pid, argv and environment) with glibc backing its mmapped blocks by huge pages.

  XLA:CPU allocates every call's temporary buffer and frees it when the call returns (0.94 GB for a bmshj2018
  training step of 8 crops of 256^2); glibc maps and unmaps blocks that large, so each call page-faulted its
  whole working set afresh in 4 kB pages: 240,000 faults and ~0.4 CPU s of kernel time per 1.2 s step on 2
  cores. glibc reads its tunables only at start-up, hence the re-exec; with 2 MB pages the same step takes
  ~1,000 faults and 1.0 s, and freed memory still goes back to the kernel (docs/training.md). Called first thing
  by the trainer and the training and codec benchmarks (not the CLI: a single call would pay ~0.1 s for the
  re-exec); a library user sets GLIBC_TUNABLES=glibc.malloc.hugetlb=1 before Python starts instead.
  JAXSEMIC_HUGE_PAGES=0 turns it off.
  """
  import sys  # pylint: disable=import-outside-toplevel
  env = huge_pages_env(dict(os.environ))
  if env is None or not getattr(sys, "orig_argv", None):
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def cache_root() -> str:
  """$JAXSEMIC_CACHE, else $XDG_CACHE_HOME/jaxsemic, else ~/.cache/jaxsemic."""
  return os.environ.get("JAXSEMIC_CACHE") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jaxsemic")


def enable_compilation_cache() -> None:
  """Caches compiled XLA programs on disk: the second `jaxsemic compress` skips all compilation."""
  import jax
  path = os.environ.get("JAXSEMIC_XLA_CACHE", os.path.join(cache_root(), "xla"))
  if path.lower() in OFF:
    return
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return  # read-only home: run without the cache
  jax.config.update("jax_compilation_cache_dir", path)
  # Every program: the small ones (jnp.split, a PRNG seed, ...) each cost 20-250 ms to compile on CPU, more
  # than reading their entry back.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
  _EXECUTABLES[:] = [os.path.join(path, "executables")]


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
  """SHA-256 of jaxsemic's Python sources and the jax, jaxlib and flax versions (~10 ms)."""
  import flax
  import jax
  import jaxlib
  root = os.path.dirname(os.path.abspath(__file__))
  h = hashlib.sha256(f"{jax.__version__} {jaxlib.__version__} {flax.__version__}".encode())
  for folder, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(f for f in files if f.endswith(".py")):
      path = os.path.join(folder, name)
      h.update(os.path.relpath(path, root).encode())
      with open(path, "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
  return h.hexdigest()


def cached_arrays(kind: str, key: object, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """`compute()` (a dict of arrays), memoised in $cache_root/kind/ under `key` (JSON-able) and the code
  fingerprint; JAXSEMIC_XLA_CACHE=off turns it off too. A cache that cannot be read or written is skipped."""
  if os.environ.get("JAXSEMIC_XLA_CACHE", "on").lower() in OFF:
    return compute()
  digest = hashlib.sha256(json.dumps([key, code_fingerprint()], sort_keys=True, default=str).encode()).hexdigest()
  folder = os.path.join(cache_root(), kind)
  path = os.path.join(folder, digest[:32] + ".npz")
  try:
    with np.load(path) as z:
      return {k: z[k] for k in z.files}
  except (OSError, ValueError, EOFError):
    pass
  out = compute()
  try:
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **out)
    os.replace(tmp, path)
  except OSError:
    pass
  return out


# Folder of `persistent_jit`'s executables; set by `enable_compilation_cache`, so only the command line uses it.
_EXECUTABLES: list[str] = []
MAX_EXECUTABLES = 256  # files kept (~40-250 kB each for the shipped models); the oldest are deleted
# XLA:CPU names kernels uniquely only within a process ("broadcast_add_fusion.1"), and a loaded executable finds
# its kernels by name: so they are named after their module, and the module after the program's key.
_COMPILER_OPTIONS = {"cpu": {"xla_cpu_generate_unique_c_style_kernel_entry_points": True}}


def persistent_jit(fun: Callable, static_argnums: int | tuple[int, ...] = ()) -> Callable:
  """`jax.jit(fun, static_argnums)` whose compiled executable is also kept on disk, by our own key.

  A new process otherwise re-traces and re-lowers the Flax model before XLA's cache can answer (~0.7 s of a
  CLI call on CPU); here a warm process loads the executable (jax.experimental.serialize_executable) by the
  function's name, the repr of its static arguments, the avals, the matmul precision, the device and
  `code_fingerprint()`. The files are as trusted as XLA's own cache beside them (they hold machine code).
  Plain jax.jit unless `enable_compilation_cache` ran, and for arguments on another device than the first.
  """
  import jax
  statics = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
  jitted = jax.jit(fun, static_argnums=statics)
  programs: dict = {}

  @functools.wraps(fun)
  def call(*args):
    if not _EXECUTABLES:
      return jitted(*args)
    device = jax.local_devices()[0]
    static = tuple(args[i] for i in statics)
    dynamic = tuple(a for i, a in enumerate(args) if i not in statics)
    leaves, tree = jax.tree.flatten(dynamic)
    if any(isinstance(a, jax.Array) and a.sharding.device_set != {device} for a in leaves):
      return jitted(*args)
    key = (static, tree, tuple(map(_aval_key, leaves)), str(jax.config.jax_default_matmul_precision),
           bool(jax.config.jax_enable_x64))
    if key not in programs:
      digest = hashlib.sha256(json.dumps([f"{fun.__module__}.{fun.__qualname__}", [repr(s) for s in static],
                                          *map(str, key[1:]), code_fingerprint(), _device_fingerprint(device)]
                                         ).encode()).hexdigest()[:32]
      path = os.path.join(_EXECUTABLES[0], digest + ".bin")
      loaded = _load_executable(path, device)
      if loaded is not None:
        try:  # an executable that cannot run here: compile it again
          out = jax.block_until_ready(loaded(*dynamic))
          programs[key] = loaded
          return out
        except jax.errors.JaxRuntimeError:
          pass
      programs[key] = _compile_and_store(fun, statics, args, path, device)
    return programs[key](*dynamic)

  return call


def _aval_key(a) -> tuple | str:
  """What a compiled program is specialised on for one argument: shape, dtype and weak type.

  Arrays give a tuple of their attributes: `str(jax.typeof(a))` costs ~6 us per array, 1.1-1.5 ms per call with
  the shipped models' 193-275 parameter arrays.
  """
  import jax
  if isinstance(a, np.ndarray):
    return a.shape, a.dtype, False
  if isinstance(a, jax.Array):
    return a.shape, a.dtype, a.weak_type
  return str(jax.typeof(a))


def _load_executable(path: str, device):
  """The stored executable at `path`, or None (missing, partial or unreadable)."""
  import pickle

  from jax.experimental import serialize_executable
  try:
    with open(path, "rb") as f:
      blob, in_tree, out_tree = pickle.load(f)
    return serialize_executable.deserialize_and_load(blob, in_tree, out_tree, backend=device.client,
                                                     execution_devices=[device])
  except Exception:  # noqa: BLE001 - any unreadable entry is a miss
    return None


def _compile_and_store(fun: Callable, statics: tuple[int, ...], args: tuple, path: str, device) -> Callable:
  """Compiles the program as its own XLA module (named after its key) and writes it to `path`.

  Not through XLA's cache: an executable read from it serialises without its kernels.
  """
  import pickle

  import jax
  from jax.experimental import serialize_executable

  def program(*a):
    return fun(*a)

  program.__name__ = program.__qualname__ = f"{fun.__name__}_{os.path.basename(path)[:16]}"
  lowered = jax.jit(program, static_argnums=statics).lower(*args)
  with _xla_cache_off():
    compiled = lowered.compile(compiler_options=_COMPILER_OPTIONS.get(device.platform))
  try:
    blob = pickle.dumps(serialize_executable.serialize(compiled))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
      f.write(blob)
    os.replace(tmp, path)
    _prune(folder, MAX_EXECUTABLES)
  except (OSError, ValueError, NotImplementedError, pickle.PicklingError):
    pass
  return compiled


@contextlib.contextmanager
def _xla_cache_off() -> Iterator[None]:
  """XLA's persistent cache really off inside (jax decides whether it is used once per process, so reset that)."""
  import jax
  try:
    from jax._src import compilation_cache  # reset_cache is the documented way back to an unchecked cache
  except ImportError:
    compilation_cache = None
  was = jax.config.jax_enable_compilation_cache
  jax.config.update("jax_enable_compilation_cache", False)
  if compilation_cache is not None:
    compilation_cache.reset_cache()
  try:
    yield
  finally:
    jax.config.update("jax_enable_compilation_cache", was)
    if compilation_cache is not None:
      compilation_cache.reset_cache()


def _prune(folder: str, keep: int) -> None:
  """Deletes all but the `keep` newest files of a cache folder (entries of older code are never read again)."""
  entries = sorted(os.scandir(folder), key=lambda e: e.stat().st_mtime, reverse=True)
  for e in entries[keep:]:
    try:
      os.remove(e.path)
    except OSError:
      pass


@functools.lru_cache(maxsize=4)
def _device_fingerprint(device) -> str:
  """Platform, its version, the device kind, XLA_FLAGS and (CPU) the host's instruction-set flags."""
  flags = ""
  if device.platform == "cpu":
    try:
      with open("/proc/cpuinfo") as f:
        flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
      pass
  return (f"{device.platform} {device.client.platform_version} {device.device_kind} "
          f"{os.environ.get('XLA_FLAGS', '')} {hashlib.sha256(flags.encode()).hexdigest()}")
