"""Applies four known-bad changes to the codec one at a time, runs the given tests, and restores each file.

Each mutation must make at least one test fail (issue 11): the latent residual prediction returning 0, ChARM
slices no longer conditioned on the earlier slices, the text fusion ignoring the text, a wrong scale index.

  python tools/mutation_check.py tests/test_golden.py tests/test_codec.py tests/test_entropy.py

Do not run it while other work uses the tree: the mutated file exists for the length of one test run.
Exit status 1 if a mutation survives.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MUTATIONS = {  # name -> (file, original line, mutated line)
    "lrp returns 0": ("jaxsemic/models/charm.py", "  return 0.5 * jnp.tanh(refined)",
                      "  return 0.0 * jnp.tanh(refined)"),
    "slices not conditioned on earlier slices": (
        "jaxsemic/models/charm.py", "  prev = decoded if max_support < 0 else decoded[:max_support]",
        "  prev = [jnp.zeros_like(d) for d in (decoded if max_support < 0 else decoded[:max_support])]"),
    "text fusion ignores the text": (
        "jaxsemic/models/fusion.py", '    t = nn.relu(nn.Dense(self.M, name="fc0")(text.astype(y3.dtype)))',
        '    t = nn.relu(nn.Dense(self.M, name="fc0")(0 * text.astype(y3.dtype)))'),
    "scale index off": ("jaxsemic/entropy/gaussian.py", 's, side="left").astype(jnp.int32)',
                        's, side="right").astype(jnp.int32) // 2 * 2'),
}


def main(tests: list[str]) -> int:
  survived = []
  for name, (rel, old, new) in MUTATIONS.items():
    path = os.path.join(ROOT, rel)
    with open(path, encoding="utf-8") as f:
      src = f.read()
    if src.count(old) != 1:
      print(f"{name}: the line to mutate is not in {rel} (exactly once); update this tool")
      return 1
    try:
      with open(path, "w", encoding="utf-8") as f:
        f.write(src.replace(old, new))
      r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    finally:
      with open(path, "w", encoding="utf-8") as f:
        f.write(src)
    failed = [line.split(" - ")[0][len("FAILED "):] for line in r.stdout.splitlines() if line.startswith("FAILED")]
    print(f"{name}: {'caught by ' + ', '.join(failed) if failed else 'NOT caught'}", flush=True)
    if not failed:
      survived.append(name)
  return 1 if survived else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:] or ["tests/test_golden.py"]))
