"""Prints the import graph between jaxsemic's subpackages (and top-level modules) and fails on a cycle.

Every `import jaxsemic.X` / `from jaxsemic.X import ...` counts, also those inside functions (a cycle hidden by a
function-local import is still a cycle). Usage: `python tools/import_graph.py`; exit status 1 on a cycle.
"""

from __future__ import annotations

import ast
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jaxsemic")


def node_of(module: str) -> str:
  """`jaxsemic.codec.api` -> `codec`; `jaxsemic.registry` -> `registry`."""
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else "jaxsemic"


def imports_of(path: str, module: str) -> set[str]:
  """The jaxsemic modules one file imports (relative imports resolved against its package)."""
  tree = ast.parse(open(path, encoding="utf-8").read(), path)
  out = set()
  pkg = module.split(".")[:-1] if not path.endswith("__init__.py") else module.split(".")
  for n in ast.walk(tree):
    if isinstance(n, ast.Import):
      out.update(a.name for a in n.names if a.name.startswith("jaxsemic"))
    elif isinstance(n, ast.ImportFrom):
      base = n.module or ""
      if n.level:
        base = ".".join(pkg[:len(pkg) - n.level + 1] + ([base] if base else []))
      if base.startswith("jaxsemic"):
        out.add(base)
        out.update(f"{base}.{a.name}" for a in n.names if os.path.exists(
            os.path.join(ROOT, *f"{base}.{a.name}".split(".")[1:]) + ".py"))
  return out


def graph() -> dict[str, set[str]]:
  """node -> the nodes it imports (self-edges dropped)."""
  g: dict[str, set[str]] = {}
  for dirpath, _, files in os.walk(ROOT):
    for f in files:
      if not f.endswith(".py"):
        continue
      path = os.path.join(dirpath, f)
      rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
      module = rel[:-len(".__init__")] if rel.endswith(".__init__") else rel
      src = node_of(module)
      g.setdefault(src, set())
      for m in imports_of(path, module):
        dst = node_of(m)
        if dst not in (src, "jaxsemic"):
          g[src].add(dst)
  return g


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
  """One cycle as a list of nodes, or None (depth-first search)."""
  state: dict[str, int] = {}
  stack: list[str] = []

  def visit(n: str) -> list[str] | None:
    state[n] = 1
    stack.append(n)
    for m in sorted(g.get(n, ())):
      if state.get(m) == 1:
        return stack[stack.index(m):] + [m]
      if m not in state:
        found = visit(m)
        if found:
          return found
    state[n] = 2
    stack.pop()
    return None

  for n in sorted(g):
    if n not in state:
      found = visit(n)
      if found:
        return found
  return None


def main() -> int:
  g = graph()
  for n in sorted(g):
    print(f"{n:12s} -> {', '.join(sorted(g[n])) or '-'}")
  cycle = find_cycle(g)
  if cycle:
    print("cycle: " + " -> ".join(cycle))
    return 1
  print("no cycle")
  return 0


if __name__ == "__main__":
  sys.exit(main())
