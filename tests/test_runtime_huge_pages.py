"""jaxsemic.runtime.use_huge_pages: the process re-runs itself with glibc's huge-page tunable, and a block that
XLA:CPU-style code allocates, touches and frees on every call then costs a few hundred page faults, not 131,072."""

import os
import subprocess
import sys

import pytest

from jaxsemic import runtime

_NEEDED = runtime.huge_pages_env({}) is not None

_PROBE = r"""
import ctypes, os, resource
from jaxsemic.runtime import use_huge_pages
use_huge_pages()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def touch_and_free(n):  # as XLA's per-call buffer (numpy would ask for huge pages itself: not what we measure)
  p = libc.malloc(n)
  ctypes.memset(p, 1, n)
  libc.free(p)
touch_and_free(512 * 2 ** 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_and_free(512 * 2 ** 20)
print(os.environ.get("GLIBC_TUNABLES"), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _probe(**env: str) -> tuple[str, int]:
  """(GLIBC_TUNABLES after use_huge_pages, page faults of the second block) in a fresh process without tunables."""
  base = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
  out = subprocess.run([sys.executable, "-c", _PROBE], env={**base, **env}, capture_output=True, text=True,
                       check=True)
  tunables, faults = out.stdout.split()
  return tunables, int(faults)


def test_huge_pages_env_adds_the_tunable_once():
  """Appended to other tunables, never twice, and not at all when turned off."""
  if not _NEEDED:
    pytest.skip("glibc < 2.35 or transparent huge pages off: nothing to add")
  assert runtime.huge_pages_env({})["GLIBC_TUNABLES"] == runtime.HUGE_PAGES_TUNABLE
  env = runtime.huge_pages_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "X": "1"})
  assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:" + runtime.HUGE_PAGES_TUNABLE, "X": "1"}
  assert runtime.huge_pages_env(env) is None
  assert runtime.huge_pages_env({"JAXSEMIC_HUGE_PAGES": "0"}) is None


@pytest.mark.skipif(not _NEEDED, reason="glibc < 2.35 or transparent huge pages off")
def test_use_huge_pages_reruns_the_process_and_stops_the_faults():
  """Re-run with the tunable, a freed and re-allocated 512 MB block faults < 25 % of its 4 kB pages (768 faults
  here: huge pages; a fragmented machine may fall back to small pages for some), off > 50 %."""
  tunables, faults = _probe()
  pages = 512 * 2 ** 20 // os.sysconf("SC_PAGE_SIZE")
  assert tunables == runtime.HUGE_PAGES_TUNABLE and faults < pages // 4
  tunables, faults = _probe(JAXSEMIC_HUGE_PAGES="0")
  assert tunables == "None" and faults > pages // 2

