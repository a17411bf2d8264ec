"""Peak memory and time of `jaxsemic compress` / `decompress` on a 50 MP photo (tiled coding, docs/bitstream.md).

    nice -n 10 python benchmarks/large_image.py [--size 8192x6144] [--model selic-q2] [--rounds 1] [--tile N]

One command prints the whole table. The image is Kodak's kodim23 from ../shared (else scikit-image's astronaut)
upscaled bicubically to --size. Each round runs one compress and one decompress process (fresh caches for the
first round, so it includes compilation); a row gives the peak RSS of the process (its own ru_maxrss, from
wait4), wall and user + sys CPU seconds, with the CPU model and the load average. The last row checks the
result: bytes, bpp and PSNR of the decoded image against the input.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from cli_startup import cpu_model, default_image, side_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd: list[str], env: dict) -> tuple[float, float, float]:
  """(peak RSS GiB, wall seconds, user + sys CPU seconds) of one process; exits if it fails."""
  t0 = time.perf_counter()
  proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  _, status, usage = os.wait4(proc.pid, 0)
  wall = time.perf_counter() - t0
  err = proc.stderr.read().decode()
  proc.returncode = os.waitstatus_to_exitcode(status)
  if proc.returncode:
    raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
  return usage.ru_maxrss / 2**20, wall, usage.ru_utime + usage.ru_stime


def make_image(folder: str, size: tuple[int, int]) -> str:
  """The source photo upscaled to size (width, height), as a PNG."""
  from PIL import Image
  path = os.path.join(folder, f"large_{size[0]}x{size[1]}.png")
  Image.open(default_image(folder)).convert("RGB").resize(size, Image.BICUBIC).save(path, compress_level=1)
  return path


def psnr(a_path: str, b_path: str) -> float:
  from PIL import Image
  Image.MAX_IMAGE_PIXELS = None
  a = np.asarray(Image.open(a_path).convert("RGB"), np.float32)
  b = np.asarray(Image.open(b_path).convert("RGB"), np.float32)
  return float(10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2)))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--size", default="8192x6144", help="WIDTHxHEIGHT")
  ap.add_argument("--model", default="selic-q2")
  ap.add_argument("--rounds", type=int, default=1)
  ap.add_argument("--tile", type=int, help="compress --tile (default: the encoder's choice)")
  args = ap.parse_args()
  size = tuple(int(v) for v in args.size.lower().split("x"))
  tmp = tempfile.mkdtemp(prefix="large_image-")
  try:
    image = make_image(tmp, size)
    jsc, png = os.path.join(tmp, "out.jsc"), os.path.join(tmp, "out.png")
    env = side_env(REPO, os.path.join(tmp, "caches"))
    py = [sys.executable, "-m", "jaxsemic.cli"]
    tile = [] if args.tile is None else ["--tile", str(args.tile)]
    commands = {"compress": py + ["compress", image, jsc, "--model", args.model, "--force", *tile],
                "decompress": py + ["decompress", jsc, png, "--model", args.model, "--force"]}
    print(f"CPU: {cpu_model()}; image {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.1f} MP); model {args.model}")
    print(f"{'round':<6} {'command':<11} {'peak RSS GiB':>12} {'wall s':>8} {'cpu s':>8} {'load':>5}")
    for rnd in range(args.rounds):
      for name, cmd in commands.items():
        load = os.getloadavg()[0]
        rss, wall, cpu = run(cmd, env)
        print(f"{rnd:<6} {name:<11} {rss:>12.2f} {wall:>8.1f} {cpu:>8.1f} {load:>5.1f}", flush=True)
    n = os.path.getsize(jsc)
    print(f"result: {n} bytes, {8 * n / (size[0] * size[1]):.4f} bpp, PSNR {psnr(image, png):.2f} dB")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  main()
