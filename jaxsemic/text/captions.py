"""Caption sidecars: jsonl lines `{"file": ..., "captions": [...]}` (or `"caption": "..."`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from jaxsemic.errors import UserError


def read_captions(path: str | os.PathLike) -> dict[str, list[str]]:
  """{file: [captions]} in file order; repeated files have their captions merged."""
  path = Path(path)
  if not path.is_file():
    raise UserError(f"captions file {path} does not exist")
  out: dict[str, list[str]] = {}
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        raise UserError(f"{path}:{n}: not a JSON line ({e.msg})") from e
      if not isinstance(row, dict) or not isinstance(row.get("file"), str):
        raise UserError(f"{path}:{n}: expected an object with a \"file\" string")
      caps = row.get("captions", [row["caption"]] if "caption" in row else [])
      if isinstance(caps, str):
        caps = [caps]
      if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise UserError(f"{path}:{n}: \"captions\" must be a list of strings")
      out.setdefault(row["file"], []).extend(caps)
  return out
