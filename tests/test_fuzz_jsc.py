"""Fuzzes `.jsc` decoding in-process (issue 15): each mutation of a tiny model's file gives an image or a UserError.

The mutations are tools/fuzz_jsc.py's (bit flips, truncations, appended junk, header fields and sub-stream
lengths and payload bytes with the CRC recomputed); that script runs many more in worker processes.
"""

import collections
import importlib.util
import os

import pytest

CASES = 240  # 40 per mutation class


def _fuzz_module():
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "fuzz_jsc.py")
  spec = importlib.util.spec_from_file_location("fuzz_jsc", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_mutants_are_deterministic_and_cover_every_class():
  fuzz = _fuzz_module()
  data = bytes(range(256)) * 2
  a, b = list(fuzz.mutants(data, 60, seed=3)), list(fuzz.mutants(data, 60, seed=3))
  assert a == b and {name for name, _ in a} == set(fuzz.MUTATIONS)
  assert sum(m != data for _, m in a) >= 55


def test_every_mutation_decodes_to_an_image_or_a_user_error(tiny_model):
  fuzz = _fuzz_module()
  data = fuzz.base_file(tiny_model, None)
  counts = collections.Counter()
  unexpected = []
  for i, (name, case) in enumerate(fuzz.mutants(data, CASES, seed=0)):
    result = fuzz.outcome(tiny_model, case)
    counts[result.split(":")[0]] += 1
    if not result.startswith(("image", "user_error")):
      unexpected.append((i, name, result))
  assert not unexpected, unexpected[:5]
  assert counts["user_error"] > CASES // 3 and counts["image"] > 0, counts


def test_tiled_file_mutations_decode_to_an_image_or_a_user_error(tiny_model):
  """The same classes on a tiled file (two 64-pixel tiles: tile side and a longer stream table in the header)."""
  fuzz = _fuzz_module()
  data = fuzz.base_file(tiny_model, None, tile=64)
  assert data[5] == 1 and fuzz._stream_table(data) == (27, 4)
  results = [(name, fuzz.outcome(tiny_model, case)) for name, case in fuzz.mutants(data, 60, seed=1)]
  unexpected = [r for r in results if not r[1].startswith(("image", "user_error"))]
  assert not unexpected, unexpected[:5]
  assert sum(r.startswith("user_error") for _, r in results) > 30
