"""SEDIC image descriptions: the schema, sidecar reading, word-limit rate control (paper Sec. III-A, Table V).

Schema (what an LMM writes for one image, as in `kodak/descriptions.jsonl`): `{"file": "kodim01.png",
"caption": "...", "overall": "...", "objects": [{"name": "...", "details": "..."}, ...]}`. A sidecar is either one
such JSON object per line (jsonl, several images) or a single JSON object (one image, `file` optional).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Protocol

from jaxsemic.errors import UserError

MAX_OBJECTS = 3  # J is 2 bits in the .sedic header
MAX_LIMIT = 255  # l_d, l_all are one byte each in the .sedic header


@dataclasses.dataclass(frozen=True)
class ObjectText:
  """One object: its short name (Text_n, used to find its tokens) and its details (Text_d)."""

  name: str
  details: str


@dataclasses.dataclass(frozen=True)
class Descriptions:
  """The texts of one image: Text_all, the objects in order of importance, and an optional caption."""

  overall: str
  objects: tuple[ObjectText, ...] = ()
  caption: str = ""


class Describer(Protocol):
  """Anything that describes an image (an LMM, BLIP for the overall text, or a sidecar file)."""

  def describe(self, image: str | os.PathLike) -> Descriptions:
    ...


class SidecarDescriber:
  """Reads descriptions written beforehand, looked up by the image's file name."""

  def __init__(self, path: str | os.PathLike):
    self.path = Path(path)

  def describe(self, image: str | os.PathLike) -> Descriptions:
    return read_descriptions(self.path, file=Path(image).name)


def parse_descriptions(row: object, where: str = "descriptions") -> Descriptions:
  """Validates one schema object; `where` prefixes error messages."""
  if not isinstance(row, dict):
    raise UserError(f"{where}: expected a JSON object with \"overall\" and \"objects\"")
  overall = row.get("overall")
  if not isinstance(overall, str):
    raise UserError(f"{where}: \"overall\" must be a string")
  caption = row.get("caption", "")
  if not isinstance(caption, str):
    raise UserError(f"{where}: \"caption\" must be a string")
  objects = row.get("objects", [])
  if not isinstance(objects, list):
    raise UserError(f"{where}: \"objects\" must be a list")
  out = []
  for i, obj in enumerate(objects):
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(obj.get("details", ""), str):
      raise UserError(f"{where}: objects[{i}] must have a \"name\" string and a \"details\" string")
    if not obj["name"].strip():
      raise UserError(f"{where}: objects[{i}] has an empty name")
    out.append(ObjectText(obj["name"], obj.get("details", "")))
  return Descriptions(overall, tuple(out), caption)


def _rows(path: Path) -> list[tuple[str, dict]]:
  """(where, object) for a single-object JSON file or for each non-blank line of a jsonl file."""
  if not path.is_file():
    raise UserError(f"descriptions file {path} does not exist")
  try:
    text = path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise UserError(f"descriptions file {path} is not UTF-8 text") from e
  try:
    whole = json.loads(text)
  except json.JSONDecodeError:
    whole = None
  if isinstance(whole, dict):
    return [(str(path), whole)]
  rows = []
  for n, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise UserError(f"{path}:{n}: not a JSON line ({e.msg})") from e
    if not isinstance(row, dict):
      raise UserError(f"{path}:{n}: expected a JSON object with \"overall\" and \"objects\"")
    rows.append((f"{path}:{n}", row))
  if not rows:
    raise UserError(f"descriptions file {path} is empty")
  return rows


def read_all_descriptions(path: str | os.PathLike) -> dict[str, Descriptions]:
  """{file: Descriptions} for every row of a jsonl sidecar, in file order; each row needs a "file" string."""
  out = {}
  for where, row in _rows(Path(path)):
    if not isinstance(row.get("file"), str):
      raise UserError(f"{where}: expected an object with a \"file\" string")
    out[row["file"]] = parse_descriptions(row, where)
  return out


def read_descriptions(path: str | os.PathLike, file: str | None = None) -> Descriptions:
  """The descriptions of one image: the row whose "file" (or its base name) is `file`, or the only row."""
  rows = _rows(Path(path))
  if file is None:
    if len(rows) != 1:
      raise UserError(f"{path} describes {len(rows)} images; say which one")
    return parse_descriptions(rows[0][1], rows[0][0])
  for where, row in rows:
    name = row.get("file")
    if isinstance(name, str) and (name == file or Path(name).name == Path(file).name):
      return parse_descriptions(row, where)
  if len(rows) == 1 and "file" not in rows[0][1]:
    return parse_descriptions(rows[0][1], rows[0][0])
  raise UserError(f"{path} has no descriptions for {file}")


def first_words(text: str, limit: int) -> str:
  """`text` cut after its `limit`-th whitespace-separated word (original spacing kept, outer spaces removed)."""
  ends = [m.end() for m in re.finditer(r"\S+", text)]
  if len(ends) <= limit:
    return text.strip()
  return text[:ends[limit - 1]].strip() if limit else ""


def limit_words(desc: Descriptions, j: int = 3, l_d: int = 30, l_all: int = 50) -> Descriptions:
  """The paper's rate knobs (Table V): keep the first `j` objects, `l_d` words of details, `l_all` of overall."""
  for name, value, top in (("J", j, MAX_OBJECTS), ("l_d", l_d, MAX_LIMIT), ("l_all", l_all, MAX_LIMIT)):
    if not isinstance(value, int) or not 0 <= value <= top:
      raise UserError(f"{name} must be an integer in 0..{top}, got {value!r}")
  objects = tuple(ObjectText(o.name.strip(), first_words(o.details, l_d)) for o in desc.objects[:j])
  return Descriptions(first_words(desc.overall, l_all), objects, desc.caption)


def texts(desc: Descriptions, names: bool = True) -> list[str]:
  """The strings sent for an image, in stream order: overall, then (name_j, details_j) or details_j per object."""
  out = [desc.overall]
  for o in desc.objects:
    out += [o.name, o.details] if names else [o.details]
  return out


def from_texts(strings: list[str], names: bool = True) -> Descriptions:
  """Inverse of `texts` (names are empty when they were not sent)."""
  per = 2 if names else 1
  if not strings or (len(strings) - 1) % per:
    raise UserError(f"{len(strings)} strings do not form overall + objects")
  rest = strings[1:]
  objects = tuple(ObjectText(rest[i] if names else "", rest[i + per - 1]) for i in range(0, len(rest), per))
  return Descriptions(strings[0], objects)
