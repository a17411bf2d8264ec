"""The CompressAI side of a benchmark: the same script re-run in the CompressAI venv (numpy<2) as a subprocess.

The script adds the hidden options (`add_options`); run with `--reference` it builds CompressAI's model
(`build`), writes its weights for our side and answers requests (`serve`). Our side starts it with
`Reference`, which writes the inputs, sends one request line at a time (`name [argument]`) and reads one JSON
reply per request; closing stdin ends the subprocess. Reply lines carry a prefix, so anything else the
CompressAI side prints is ignored; its stderr is kept and shown only when it fails.

Our side runs with glibc's huge-page tunable (`jaxsemic.runtime.use_huge_pages`, as the trainer does);
PyTorch gains at least as much from it, so `--compressai-malloc both` (the default) runs two CompressAI
processes, one as PyTorch ships and one with the same tunable (`huge`), and each ratio is printed against both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Callable, Mapping, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "@@"  # prefix of the reply lines on the subprocess's stdout


def add_options(parser: argparse.ArgumentParser) -> None:
  """The hidden options that make the script the CompressAI side: --reference, --weights, --inputs."""
  parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--weights", help=argparse.SUPPRESS)
  parser.add_argument("--inputs", help=argparse.SUPPRESS)
  parser.add_argument("--compressai-malloc", default="both", choices=("both", "default", "huge"),
                      help="glibc malloc of the CompressAI side: as PyTorch ships, with the huge-page tunable our "
                           "side runs with (jaxsemic.runtime.use_huge_pages), or one process of each (default)")


def our_pages(args: argparse.Namespace) -> str:
  """For our side (not a CompressAI subprocess): `machine.huge_pages()`, first thing; else ''."""
  if args.reference:
    return ""
  from machine import huge_pages  # pylint: disable=import-outside-toplevel
  return huge_pages()


def malloc_settings(args: argparse.Namespace) -> tuple[tuple[str, bool], ...]:
  """(label, huge pages) of each CompressAI process `--compressai-malloc` asks for."""
  both = (("CompressAI", False), ("CompressAI, huge pages", True))
  return {"both": both, "default": both[:1], "huge": both[1:]}[args.compressai_malloc]


def _environment(huge: bool) -> dict[str, str]:
  """This environment without glibc's huge-page tunable, or with it (`huge`; `runtime.huge_pages_env`, so only
  where glibc and the kernel support it, as for our side)."""
  sys.path.insert(0, REPO)
  from jaxsemic.runtime import huge_pages_env  # pylint: disable=import-outside-toplevel
  kept = ":".join(t for t in os.environ.get("GLIBC_TUNABLES", "").split(":")
                  if t and not t.startswith("glibc.malloc.hugetlb"))
  env = {**{k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}, **({"GLIBC_TUNABLES": kept} if kept else {})}
  return (huge_pages_env(env) or env) if huge else env


# --- the CompressAI side (runs in the CompressAI venv) -----------------------------------------------------------

def build(arch: str, weights: str, **sizes: int):
  """CompressAI's `arch` with the parity fixtures' seeded, perturbed init; its state dict written to `weights`.

  Also sets torch to one thread per core.
  """
  import torch  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, os.path.join(REPO, "tools"))
  from compressai_fixtures import build as build_fixture  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(os.cpu_count() or 1)
  net = build_fixture(arch, 0, **sizes)
  np.savez(weights, **{k: v.numpy() for k, v in net.state_dict().items()})
  return net


def torch_info() -> dict:
  """The torch version and thread count, for the printed table."""
  import torch  # pylint: disable=import-outside-toplevel
  return {"torch": torch.__version__, "threads": torch.get_num_threads()}


def reply(obj: dict) -> None:
  """One reply line."""
  print(TAG + json.dumps(obj), flush=True)


def serve(first: dict, handlers: Mapping[str, Callable[[str], dict]]) -> None:
  """Replies `first`, then `handlers[name](argument)` to each stdin line `name [argument]` until stdin closes."""
  reply(first)
  for line in sys.stdin:
    name, _, argument = line.strip().partition(" ")
    reply(handlers[name](argument))


# --- our side (runs in the jaxsemic venv) ------------------------------------------------------------------------

class Reference:
  """The CompressAI subprocess of `script`: started once with `inputs` written, asked one request at a time.

  `info` is its first reply (sent once the weights are written); `weights` and `inputs` are the files' paths,
  kept until the `with` block ends.
  """

  def __init__(self, python: str, script: str, inputs: Mapping[str, np.ndarray], extra: Sequence[str] = (),
               huge_pages: bool = False):
    self._dir = tempfile.TemporaryDirectory()
    self.weights = os.path.join(self._dir.name, "weights.npz")
    self.inputs = os.path.join(self._dir.name, "inputs.npz")
    np.savez(self.inputs, **inputs)
    self._stderr = tempfile.TemporaryFile(mode="w+")
    cmd = [python, os.path.abspath(script), "--reference", "--weights", self.weights, "--inputs", self.inputs,
           *extra]
    self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                 text=True, env=_environment(huge_pages))
    try:
      self.info = self._read()
    except BaseException:
      self.__exit__()
      raise

  def _read(self) -> dict:
    for line in self.proc.stdout:
      if line.startswith(TAG):
        return json.loads(line[len(TAG):])
    code = self.proc.wait()
    self._stderr.seek(0)
    raise SystemExit(f"the CompressAI subprocess failed (exit {code}):\n{self._stderr.read()[-2000:]}")

  def ask(self, name: str, argument: str = "") -> dict:
    """The reply to request `name` (with `argument`)."""
    try:
      self.proc.stdin.write(f"{name} {argument}".rstrip() + "\n")
      self.proc.stdin.flush()
    except BrokenPipeError:
      pass  # it has ended: _read says how
    return self._read()

  def close(self) -> None:
    """Ends the subprocess (the files stay until the `with` block ends)."""
    if self.proc.stdin.closed:
      return
    try:
      self.proc.stdin.close()
    except BrokenPipeError:
      pass  # it has ended already
    try:
      self.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait()

  def __enter__(self) -> Reference:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
    self._stderr.close()
    self._dir.cleanup()
