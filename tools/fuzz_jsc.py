"""Fuzzes `.jsc` decoding (issue 15): deterministic mutations of one file, each decoded by `codec.api.decompress`.

Every case must give an image or a `UserError`; anything else is counted as unexpected. Cases run in worker
processes with a per-case timeout and a memory watch (a worker over --max-rss-mib is killed); the peak RSS of
each case is measured (VmHWM, reset before each case through /proc/self/clear_refs).

  nice -n 10 python tools/fuzz_jsc.py --cases 10000 --workers 2          # tiny random SELIC model
  nice -n 10 python tools/fuzz_jsc.py --cases 1000 --tile 64             # a tiled file (two 64-pixel tiles)
  python tools/fuzz_jsc.py --model MODEL_DIR --image photo.png --cases 2000

Prints the counts per outcome and per mutation class, and the peak memory; exit status 1 on any unexpected
outcome, hang or worker death. `mutants` is also what tests/test_fuzz_jsc.py runs in-process.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import struct
import sys
import time
import zlib
from typing import Callable, Iterator

import numpy as np

# header: magic 0:4, version 4, flags 5, model id 6:14, height 14:18, width 18:22, stream count 22, lengths 23..
_FIELDS = {"version": (4, "B"), "flags": (5, "B"), "height": (14, "<I"), "width": (18, "<I"), "count": (22, "B")}
_INTERESTING = (0, 1, 2, 3, 63, 64, 65, 127, 128, 255, 256, 4096, 8192, 16384, 65535, 65536, 1 << 31,
                (1 << 32) - 1)
TINY = dict(name="selic", N=16, M=20, num_slices=4, max_support_slices=-1, charm_hidden=[16], fusion="concat",
            text_dim=8, upsample="tconv")  # the suite's tiny model (tests/conftest.py)


def _crc(body: bytes | bytearray) -> bytes:
  return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def _bit_flips(rng, data: bytes) -> bytes:
  b = bytearray(data)
  for _ in range(int(rng.integers(1, 4))):
    i = int(rng.integers(len(b)))
    b[i] ^= 1 << int(rng.integers(8))
  return bytes(b)


def _stream_table(data: bytes) -> tuple[int, int]:
  """(offset, count) of the sub-stream lengths of a well-formed .jsc, untiled or tiled (flags bit 0)."""
  n, (h, w) = data[22], struct.unpack_from("<II", data, 14)
  if not data[5] & 1:
    return 23, n
  (tile,) = struct.unpack_from("<I", data, 23)
  return 27, n * -(-h // tile) * -(-w // tile)


def _payload_flips_crc(rng, data: bytes) -> bytes:
  """Bit or byte changes in the range-coded payload, CRC recomputed (the decoder really reads them)."""
  off, n = _stream_table(data)
  start, body = off + 4 * n, bytearray(data[:-4])
  if start >= len(body):
    return _crc(body)
  for _ in range(int(rng.integers(1, 6))):
    i = int(rng.integers(start, len(body)))
    body[i] = int(rng.integers(256)) if rng.random() < 0.5 else body[i] ^ (1 << int(rng.integers(8)))
  return _crc(body)


def _truncate(rng, data: bytes) -> bytes:
  cut = data[:int(rng.integers(0, len(data)))]
  return _crc(cut[:-4]) if rng.random() < 0.5 and len(cut) > 4 else cut


def _append(rng, data: bytes) -> bytes:
  junk = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
  return _crc(data[:-4] + junk) if rng.random() < 0.5 else data + junk


def _header_field(rng, data: bytes) -> bytes:
  """One header field (version, flags, a model-id byte, height, width, stream count) set, CRC recomputed."""
  body = bytearray(data[:-4])
  name = str(rng.choice(list(_FIELDS) + ["model_id"]))
  if name == "model_id":
    body[6 + int(rng.integers(8))] ^= 1 << int(rng.integers(8))
    return _crc(body)
  off, fmt = _FIELDS[name]
  size = struct.calcsize(fmt)
  old = struct.unpack_from(fmt, body, off)[0]
  choices = [v for v in _INTERESTING if v < 256 ** size] + [max(old - 1, 0), old + 1]
  struct.pack_into(fmt, body, off, int(rng.choice(choices)) % 256 ** size)
  return _crc(body)


def _stream_lengths(rng, data: bytes) -> bytes:
  """Sub-stream lengths swapped, moved between streams, or set to an interesting value; CRC recomputed."""
  (off, n), body = _stream_table(data), bytearray(data[:-4])
  if n == 0:
    return _crc(body)
  lengths = list(struct.unpack_from(f"<{n}I", body, off))
  r = rng.random()
  if r < 0.3 and n > 1:
    lengths = lengths[::-1]
  elif r < 0.7 and n > 1:
    k = 4 * int(rng.integers(-3, 4))
    i = int(rng.integers(n - 1)) if n > 2 else 0  # tiled files: any two neighbours
    lengths[i], lengths[i + 1] = max(lengths[i] + k, 0), max(lengths[i + 1] - k, 0)
  else:
    lengths[int(rng.integers(n))] = int(rng.choice(_INTERESTING))
  struct.pack_into(f"<{n}I", body, off, *lengths)
  return _crc(body)


MUTATIONS: dict[str, Callable] = {"bit_flips": _bit_flips, "payload_crc": _payload_flips_crc,
                                   "truncate": _truncate, "append": _append, "header_field": _header_field,
                                   "stream_lengths": _stream_lengths}


def mutants(data: bytes, count: int, seed: int = 0, mutations: dict[str, Callable] | None = None
            ) -> Iterator[tuple[str, bytes]]:
  """`count` (class, mutated file) pairs, the classes (default MUTATIONS) in turn; the same for the same arguments."""
  mutations = MUTATIONS if mutations is None else mutations
  rng = np.random.default_rng(seed)
  names = list(mutations)
  for i in range(count):
    name = names[i % len(names)]
    yield name, mutations[name](rng, data)


def outcome(model, data: bytes) -> str:
  """'image', 'user_error', or 'unexpected <type>: <message>' for one decode."""
  from jaxsemic.codec import api
  from jaxsemic.errors import UserError
  try:
    img = api.decompress(model, data)
  except UserError as e:
    return "user_error" if "\n" not in str(e) else f"unexpected multi-line UserError: {str(e)[:80]!r}"
  except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
    return f"unexpected {type(e).__name__}: {str(e)[:100]}"
  if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
    return f"unexpected image {img.dtype} {img.shape}"
  return "image"


def _vm(field: str, pid: int | str = "self") -> int:
  """A /proc/PID/status memory field in KiB (0 if unavailable)."""
  try:
    with open(f"/proc/{pid}/status") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1])
  except OSError:
    pass
  return 0


def _reset_peak() -> None:
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass


def build_model(model_dir: str | None):
  from jaxsemic.codec.model_io import CodecModel, init_params, load_model
  from jaxsemic.models import ModelConfig
  if model_dir:
    return load_model(model_dir)
  cfg = ModelConfig.from_any(TINY)
  return CodecModel.from_params(init_params(cfg, seed=0), cfg)


def base_image() -> np.ndarray:
  """The fixed 40x100 noise-and-gradient uint8 image whose file is mutated by default."""
  yy, xx = np.mgrid[0:40, 0:100]
  noise = np.random.default_rng(0).integers(0, 64, (40, 100, 3))
  return np.clip(np.stack([yy * 5, xx * 2, yy + xx], -1) + noise, 0, 255).astype(np.uint8)


def base_file(model, image_path: str | None, tile: int = 0) -> bytes:
  """The file to mutate: the model's .jsc of --image, else of `base_image()` (in tiles of `tile` pixels)."""
  from jaxsemic.codec import api, image_io
  img = image_io.read_image(image_path) if image_path else base_image()
  text = np.zeros(model.text_dim, np.float32) if model.text_dim else None
  return api.compress(model, img, text, tile=tile)[0]


def _worker(model_dir, target: str, conn) -> None:
  """Decodes the files sent over `conn` with `outcome` of the fuzz script `target` (a module in tools/)."""
  import importlib
  fuzz = importlib.import_module(target)
  model = fuzz.build_model(model_dir)
  conn.send("ready")
  while True:
    data = conn.recv()
    if data is None:
      return
    _reset_peak()
    t0 = time.perf_counter()
    result = fuzz.outcome(model, data)
    conn.send((result, _vm("VmHWM"), time.perf_counter() - t0))


class Worker:
  """One worker process with its pipe; restarted after a hang, a memory kill or a death."""

  def __init__(self, model_dir, target: str = "fuzz_jsc"):
    self.model_dir, self.target = model_dir, target
    self.start()

  def start(self) -> None:
    ctx = mp.get_context("spawn")
    self.conn, child = ctx.Pipe()
    self.proc = ctx.Process(target=_worker, args=(self.model_dir, self.target, child), daemon=True)
    self.proc.start()
    if not self.conn.poll(600) or self.conn.recv() != "ready":
      raise SystemExit("worker did not start")

  def kill(self) -> None:
    self.proc.kill()
    self.proc.join()

  def run(self, data: bytes, timeout: float, max_rss_kib: int) -> tuple[str, int, float]:
    """(outcome, peak RSS KiB, seconds); 'hang', 'memory' and 'worker_death' restart the worker."""
    self.conn.send(data)
    t0 = time.perf_counter()
    peak = 0
    while not self.conn.poll(0.05):
      peak = max(peak, _vm("VmRSS", self.proc.pid))
      reason = ("worker_death" if not self.proc.is_alive() else "hang" if time.perf_counter() - t0 > timeout
                else "memory" if peak > max_rss_kib else None)
      if reason:
        self.kill()
        self.start()
        return reason, peak, time.perf_counter() - t0
    try:
      return self.conn.recv()
    except EOFError:
      self.kill()
      self.start()
      return "worker_death", peak, time.perf_counter() - t0


def arguments(doc: str, argv=None, tile: bool = False) -> argparse.Namespace:
  """The options every fuzz script shares (and --tile for .jsc files)."""
  p = argparse.ArgumentParser(description=doc.splitlines()[0])
  p.add_argument("--cases", type=int, default=1000)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--model", help="model directory (default: the tiny random SELIC model of the test suite)")
  p.add_argument("--image", help="image whose file is mutated (default: a generated 40x100 image)")
  p.add_argument("--workers", type=int, default=2)
  p.add_argument("--timeout", type=float, default=120.0, help="seconds per case before it counts as a hang")
  p.add_argument("--max-rss-mib", type=int, default=4096, help="a worker above this is killed (memory)")
  if tile:
    p.add_argument("--tile", type=int, default=0, help="mutate a tiled .jsc (tile side in pixels, e.g. 64)")
  return p.parse_args(argv)


def run_cases(cases: list[tuple[str, bytes]], args: argparse.Namespace, target: str, base_bytes: int) -> int:
  """Decodes every case in `args.workers` worker processes of the fuzz script `target`; prints the counts.

  Returns the exit status: 1 on any outcome other than 'image' and 'user_error'.
  """
  workers = [Worker(args.model, target) for _ in range(max(1, args.workers))]
  counts, by_class, peaks, slowest, examples = collections.Counter(), collections.Counter(), [], 0.0, {}
  t0 = time.perf_counter()
  pending = collections.deque(enumerate(cases))
  import concurrent.futures as cf
  with cf.ThreadPoolExecutor(len(workers)) as pool:
    def drain(w: Worker) -> list:
      out = []
      while pending:
        try:
          i, (name, case) = pending.popleft()
        except IndexError:
          break
        out.append((i, name, *w.run(case, args.timeout, args.max_rss_mib * 1024)))
      return out
    for results in pool.map(drain, workers):
      for i, name, result, peak_kib, seconds in results:
        kind = result.split(":")[0]
        counts[kind] += 1
        by_class[(name, kind)] += 1
        peaks.append(peak_kib)
        slowest = max(slowest, seconds)
        if kind not in ("image", "user_error"):
          examples.setdefault(kind, (i, name, result))
  for w in workers:
    w.conn.send(None)
    w.proc.join(5)
  peaks_mib = np.asarray(peaks, np.float64) / 1024
  print(f"{len(cases)} cases in {time.perf_counter() - t0:.0f} s (seed {args.seed}, base file {base_bytes} bytes)")
  for kind, n in counts.most_common():
    print(f"  {kind}: {n}")
  for (name, kind), n in sorted(by_class.items()):
    print(f"    {name:15s} {kind}: {n}")
  print(f"peak RSS per case: median {np.median(peaks_mib):.0f} MiB, max {peaks_mib.max():.0f} MiB; "
        f"slowest case {slowest:.2f} s")
  for kind, (i, name, result) in examples.items():
    print(f"example {kind}: case {i} ({name}): {result}")
  return int(any(k not in ("image", "user_error") for k in counts))


def main(argv=None) -> int:
  args = arguments(__doc__, argv, tile=True)
  data = base_file(build_model(args.model), args.image, args.tile)
  return run_cases(list(mutants(data, args.cases, args.seed)), args, "fuzz_jsc", len(data))


if __name__ == "__main__":
  sys.exit(main())
