"""What every benchmark prints beside its numbers: the CPU model, the load average, the memory it took."""

from __future__ import annotations

import os
import platform
import subprocess


def cpu_model() -> str:
  """lscpu's `Model name` (the CPU a ratio was measured on), else /proc/cpuinfo's, else platform.processor()."""
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
  except OSError:
    out = ""
  for line in out.splitlines():
    if line.startswith("Model name"):
      return line.split(":", 1)[1].strip()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def load() -> str:
  """The 1/5/15-minute load averages."""
  return "/".join(f"{v:.1f}" for v in os.getloadavg())


def memory_gib(field: str = "VmHWM") -> float:
  """VmHWM (peak RSS) or VmRSS of this process, GiB."""
  with open("/proc/self/status", encoding="ascii") as status:
    kib = next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
  return kib / 2 ** 20


def huge_pages() -> str:
  """`jaxsemic.runtime.use_huge_pages()` (re-runs this script with glibc's huge-page tunable, as the trainer
  runs); 'huge pages' or 'default pages', for the printout."""
  from jaxsemic.runtime import use_huge_pages  # pylint: disable=import-outside-toplevel
  use_huge_pages()
  return "huge pages" if "glibc.malloc.hugetlb" in os.environ.get("GLIBC_TUNABLES", "") else "default pages"
