"""Fuzzes `.sedic` parsing and decoding in-process (issue 15): each mutation decodes or gives a one-line UserError.

The mutations are tools/fuzz_sedic.py's (bit flips, truncations, appended junk, header fields, stream lengths and
stream bytes with the CRC recomputed), decoded up to the diffusion model: header, texts, masks, reference image.
"""

import collections
import importlib.util
import os
import sys

CASES = 90  # 15 per mutation class
TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")


def _fuzz_module():
  sys.path.insert(0, TOOLS)  # fuzz_sedic imports fuzz_jsc
  spec = importlib.util.spec_from_file_location("fuzz_sedic", os.path.join(TOOLS, "fuzz_sedic.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_every_sedic_mutation_decodes_or_is_a_user_error(tiny_model):
  fuzz = _fuzz_module()
  data = fuzz.base_file(tiny_model)
  assert fuzz.outcome(tiny_model, data) == "image"
  cases = list(fuzz.mutants(data, CASES, seed=0))
  assert cases == list(fuzz.mutants(data, CASES, seed=0)) and {n for n, _ in cases} == set(fuzz.MUTATIONS)
  counts, unexpected = collections.Counter(), []
  for i, (name, case) in enumerate(cases):
    result = fuzz.outcome(tiny_model, case)
    counts[result.split(":")[0]] += 1
    if not result.startswith(("image", "user_error")):
      unexpected.append((i, name, result))
  assert not unexpected, unexpected[:5]
  assert counts["user_error"] > CASES // 2 and counts["image"] > 0, counts
