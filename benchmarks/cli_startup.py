"""Wall and CPU seconds of whole `jaxsemic compress` / `decompress` processes, cold (empty caches) and warm.

    python benchmarks/cli_startup.py [--image PATH] [--rounds 3] [--compare REV] [--model selic-q2]

One command prints the whole table: the CPU model and the load average with every row. Each side (this tree,
and with --compare a `git archive` of REV run from a temporary folder) gets fresh cache folders
(JAXSEMIC_XLA_CACHE, JAXSEMIC_CACHE) for one cold compress + decompress, then `--rounds` warm pairs; sides are
interleaved (A, B, A, B...). Rows give the min and median wall seconds (process start included) and the min
user + sys CPU seconds of the process (less sensitive to other load than wall time). The default image is
Kodak's kodim23 (768x512) from ../shared when present, else a 768x512 crop of scikit-image's astronaut.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from machine import cpu_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KODIM23 = os.path.join(REPO, "..", "shared", "data", "kodak", "kodim23.png")


def default_image(folder: str) -> str:
  """kodim23 when ../shared has it, else a 768x512 crop of a photo bundled with scikit-image."""
  if os.path.isfile(KODIM23):
    return KODIM23
  from PIL import Image
  from skimage import data
  path = os.path.join(folder, "astronaut_768x512.png")
  Image.fromarray(data.astronaut()).resize((768, 768)).crop((0, 128, 768, 640)).save(path)
  return path


def timed(cmd: list[str], env: dict, cwd: str) -> tuple[float, float]:
  """(wall seconds, user + sys CPU seconds) of one process; raises if it fails."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  t0 = time.perf_counter()
  r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
  wall = time.perf_counter() - t0
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if r.returncode:
    raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
  return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def side_env(root: str, caches: str) -> dict:
  """The environment of one side: its code first on the path, its own empty cache folders."""
  return dict(os.environ, PYTHONPATH=root, JAXSEMIC_XLA_CACHE=os.path.join(caches, "xla"),
              JAXSEMIC_CACHE=os.path.join(caches, "jaxsemic"))


def run_pair(env: dict, image: str, work: str, model: str) -> dict[str, tuple[float, float]]:
  """compress then decompress (overwriting): {command: (wall, cpu)}."""
  jsc, png = os.path.join(work, "out.jsc"), os.path.join(work, "out.png")
  py = [sys.executable, "-m", "jaxsemic.cli"]
  return {"compress": timed(py + ["compress", image, jsc, "--model", model, "--force"], env, work),
          "decompress": timed(py + ["decompress", jsc, png, "--force"], env, work)}


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--image")
  ap.add_argument("--rounds", type=int, default=3)
  ap.add_argument("--compare", help="git revision to measure beside this tree")
  ap.add_argument("--model", default="selic-q2")
  args = ap.parse_args()
  tmp = tempfile.mkdtemp(prefix="cli_startup-")
  try:
    image = args.image or default_image(tmp)
    sides = {"this tree": REPO}
    if args.compare:
      root = os.path.join(tmp, "compare")
      os.makedirs(root)
      archive = subprocess.run(["git", "-C", REPO, "archive", args.compare], check=True, capture_output=True)
      subprocess.run(["tar", "-x", "-C", root], input=archive.stdout, check=True)
      sides = {args.compare: root, **sides}
    print(f"CPU: {cpu_model()}; image: {image}; model: {args.model}")
    results: dict = {}
    for rnd in range(args.rounds + 1):  # round 0: cold (fresh caches)
      for name, root in sides.items():
        caches, work = os.path.join(tmp, "caches", name), os.path.join(tmp, "work", name)
        if rnd == 0:
          shutil.rmtree(caches, ignore_errors=True)
          os.makedirs(work, exist_ok=True)
        load = os.getloadavg()[0]
        for cmd, (wall, cpu) in run_pair(side_env(root, caches), image, work, args.model).items():
          results.setdefault((name, cmd, "cold" if rnd == 0 else "warm"), []).append((wall, cpu, load))
    print(f"{'code':<12} {'command':<11} {'state':<5} {'runs':>4} {'wall min':>8} {'median':>7} {'cpu min':>7} "
          f"{'load':>5}")
    for (name, cmd, state), rows in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
      walls = [r[0] for r in rows]
      print(f"{name[:12]:<12} {cmd:<11} {state:<5} {len(rows):>4} {min(walls):>8.2f} {statistics.median(walls):>7.2f} "
            f"{min(r[1] for r in rows):>7.2f} {statistics.mean(r[2] for r in rows):>5.1f}")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  main()
