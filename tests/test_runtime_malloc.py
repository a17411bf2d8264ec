"""jaxsemic.runtime.retain_freed_memory: glibc keeps freed blocks, so reusing them page-faults nothing."""

import os
import subprocess
import sys

import pytest


_FAULTS = r"""
import ctypes, resource
from jaxsemic.runtime import retain_freed_memory
applied = retain_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def touch_and_free(n):  # as XLA's per-call buffer (numpy would ask for huge pages: not what we measure)
  p = libc.malloc(n)
  ctypes.memset(p, 1, n)
  libc.free(p)
touch_and_free(512 * 2 ** 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_and_free(512 * 2 ** 20)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
@pytest.mark.parametrize("setting", ["1", "0"])
def test_retain_freed_memory_reuses_pages(setting):
  """Retained, a second 512 MB block reuses the first one's pages (no page faults); off, it faults them anew."""
  env = {**os.environ, "JAXSEMIC_RETAIN_MEMORY": setting}
  out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True)
  applied, faults = out.stdout.split()
  pages = 512 * 2 ** 20 // os.sysconf("SC_PAGE_SIZE")
  if setting == "1":
    assert applied == "True" and int(faults) < pages // 100
  else:
    assert applied == "False" and int(faults) > pages // 2
