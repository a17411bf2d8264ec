"""The CLI's start-up caches (jaxsemic.runtime): a warm process reads back what a cold one computed, exactly."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsemic import runtime


@pytest.fixture
def executables(tmp_path, monkeypatch):
  """persistent_jit switched on, storing into a fresh folder."""
  monkeypatch.setattr(runtime, "_EXECUTABLES", [str(tmp_path / "executables")])
  return tmp_path / "executables"


def _scaled_sum(k, x, p):
  return {"y": jnp.sum(x * p["w"]) * k, "z": (x[:2] + k,)}


def test_persistent_jit_stores_then_loads_the_same_program(executables, monkeypatch):
  x, p = np.arange(6, dtype=np.float32), {"w": np.linspace(0, 1, 6, dtype=np.float32)}
  want = jax.jit(_scaled_sum, static_argnums=0)(3, x, p)
  first = runtime.persistent_jit(_scaled_sum, static_argnums=0)(3, x, p)
  assert len(list(executables.iterdir())) == 1
  monkeypatch.setattr(runtime, "_compile_and_store", lambda *a: pytest.fail("compiled although stored"))
  again = runtime.persistent_jit(_scaled_sum, static_argnums=0)  # a new wrapper: nothing in memory
  for got in (first, again(3, x, p)):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), got, want)


def test_persistent_jit_keys_static_args_and_shapes(executables):
  f = runtime.persistent_jit(_scaled_sum, static_argnums=0)
  p = {"w": np.ones(4, np.float32)}
  f(1, np.ones(4, np.float32), p)
  f(2, np.ones(4, np.float32), p)
  f(2, np.ones(4, np.float32), p)
  f(2, np.ones(8, np.float32), {"w": np.ones(8, np.float32)})
  assert len(list(executables.iterdir())) == 3
  assert float(f(2, np.ones(4, np.float32), p)["y"]) == 8.0


def test_persistent_jit_recompiles_an_unreadable_entry(executables):
  f = functools.partial(runtime.persistent_jit(_scaled_sum, static_argnums=0), 1)
  x, p = np.ones(3, np.float32), {"w": np.ones(3, np.float32)}
  f(x, p)
  (entry,) = executables.iterdir()
  entry.write_bytes(b"not an executable")
  g = functools.partial(runtime.persistent_jit(_scaled_sum, static_argnums=0), 1)
  assert float(g(x, p)["y"]) == 3.0
  assert entry.read_bytes() != b"not an executable"


def test_persistent_jit_is_plain_jit_when_off(monkeypatch):
  monkeypatch.setattr(runtime, "_EXECUTABLES", [])
  monkeypatch.setattr(runtime, "_compile_and_store", lambda *a: pytest.fail("stored although off"))
  assert float(runtime.persistent_jit(_scaled_sum, static_argnums=0)(2, np.ones(2, np.float32),
                                                                     {"w": np.ones(2, np.float32)})["y"]) == 4.0


def test_cached_arrays_computes_once_per_key(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXSEMIC_CACHE", str(tmp_path))
  monkeypatch.delenv("JAXSEMIC_XLA_CACHE", raising=False)
  calls = []

  def compute(v):
    calls.append(v)
    return {"v": np.full(3, v, np.float32), "s": np.array(json.dumps({"k": v}))}

  a = runtime.cached_arrays("kind", ["a", 1], lambda: compute(1.5))
  b = runtime.cached_arrays("kind", ["a", 1], lambda: compute(9.0))
  c = runtime.cached_arrays("kind", ["a", 2], lambda: compute(2.5))
  assert calls == [1.5, 2.5]
  np.testing.assert_array_equal(a["v"], b["v"])
  assert json.loads(str(b["s"])) == {"k": 1.5} and c["v"][0] == 2.5
  monkeypatch.setenv("JAXSEMIC_XLA_CACHE", "off")
  runtime.cached_arrays("kind", ["a", 1], lambda: compute(7.0))
  assert calls[-1] == 7.0


def test_abstract_params_from_the_cache_equal_the_traced_ones(tiny_cfg, tmp_path, monkeypatch):
  from jaxsemic.codec import model_io
  monkeypatch.setenv("JAXSEMIC_CACHE", str(tmp_path))
  monkeypatch.delenv("JAXSEMIC_XLA_CACHE", raising=False)
  traced = model_io._traced_abstract_params(tiny_cfg)
  first, second = model_io.abstract_params(tiny_cfg), model_io.abstract_params(tiny_cfg)
  assert list((tmp_path / "param_shapes").iterdir())
  assert jax.tree.structure(first) == jax.tree.structure(traced) == jax.tree.structure(second)
  assert jax.tree.leaves(second) == jax.tree.leaves(traced)


def test_warm_cli_processes_load_every_program_and_write_the_same_bytes(tmp_path, photo):
  """Compress in one process, compress and decompress in two more: the later ones load what the first stored
  and recompile none of it (a stored executable that fails to run is compiled and rewritten), same bytes."""
  import os

  from PIL import Image

  from conftest import run_cli
  from jaxsemic import shipped
  from jaxsemic.codec import api, model_io
  tmp = tmp_path
  tiny_model_dir = shipped.model_dir("selic-q2")  # text-guided: the caption vector is cached too
  Image.fromarray(photo).save(tmp / "in.png")
  env = {"JAXSEMIC_XLA_CACHE": str(tmp / "xla"), "JAXSEMIC_CACHE": str(tmp / "cache")}
  args = ["--model", tiny_model_dir, "--caption", "an astronaut", "--force"]
  assert run_cli("compress", tmp / "in.png", tmp / "a.jsc", *args, env=env).returncode == 0
  stored = {p.name: p.stat().st_mtime_ns for p in (tmp / "xla" / "executables").iterdir()}
  assert len(stored) >= 4  # the analysis, hyper-synthesis, slice and symbol programs
  assert run_cli("compress", tmp / "in.png", tmp / "b.jsc", *args, env=env).returncode == 0
  r = run_cli("decompress", tmp / "b.jsc", tmp / "b.png", "--model", tiny_model_dir, env=env)
  assert r.returncode == 0, r.stderr
  after = {p.name: p.stat().st_mtime_ns for p in (tmp / "xla" / "executables").iterdir()}
  assert {k: v for k, v in after.items() if k in stored} == stored  # loaded, never recompiled
  assert (tmp / "a.jsc").read_bytes() == (tmp / "b.jsc").read_bytes()
  want = api.decompress(model_io.load_model(tiny_model_dir), (tmp / "b.jsc").read_bytes())
  np.testing.assert_array_equal(np.asarray(Image.open(tmp / "b.png")), want)
  assert os.listdir(tmp / "cache" / "param_shapes") and os.listdir(tmp / "cache" / "text_vectors")


def test_stored_program_is_compiled_past_a_warm_xla_cache(tmp_path, monkeypatch):
  """With XLA's cache on and already holding the program, what persistent_jit stores must still load and run
  (an executable read back from XLA's cache serialises without its kernels)."""
  from jax._src import compilation_cache
  was_dir = jax.config.jax_compilation_cache_dir
  monkeypatch.setenv("JAXSEMIC_XLA_CACHE", str(tmp_path / "xla"))
  monkeypatch.setattr(runtime, "_EXECUTABLES", [])
  runtime.enable_compilation_cache()
  compilation_cache.reset_cache()  # jax decides once per process whether its cache is used
  try:
    x, p = np.arange(6, dtype=np.float32), {"w": np.ones(6, np.float32)}
    want = jax.jit(_scaled_sum, static_argnums=0)(5, x, p)
    for folder in ("first", "second"):  # the second store starts with XLA's cache warm for this program
      monkeypatch.setattr(runtime, "_EXECUTABLES", [str(tmp_path / folder)])
      runtime.persistent_jit(_scaled_sum, static_argnums=0)(5, x, p)
    monkeypatch.setattr(runtime, "_compile_and_store", lambda *a: pytest.fail("stored program did not run"))
    got = runtime.persistent_jit(_scaled_sum, static_argnums=0)(5, x, p)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), got, want)
  finally:
    jax.config.update("jax_compilation_cache_dir", was_dir)
    compilation_cache.reset_cache()
