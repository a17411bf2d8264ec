"""Trained models shipped with the package (issue 13): SELIC at three rates and SEDIC's reference codec; see MODEL_CARD.md.

Each model is a directory of package data (config.json, params.safetensors, tables.npz) that
`codec.model_io.load_model` reads like any exported model. `jaxsemic compress` uses `selic-q{--quality}`
when no --model is given, and `jaxsemic decompress` finds the shipped model by the file's model id.
"""

from __future__ import annotations

import json
import os

from jaxsemic.errors import UserError

ROOT = os.path.dirname(os.path.abspath(__file__))
# SELIC rate points, lowest rate first; q2 is the default.
SELIC_NAMES = ("selic-q1", "selic-q2", "selic-q3")
DEFAULT_QUALITY = 2
# SEDIC's reference-image codec (cheng2020-attn at SEDIC's λ, about 0.02 bpp): the default of `jaxsemic sedic`.
SEDIC_REFERENCE = "sedic-reference"
NAMES = SELIC_NAMES + (SEDIC_REFERENCE,)


def available() -> list[str]:
  """The shipped models present in this installation."""
  return [n for n in NAMES if os.path.isfile(os.path.join(ROOT, n, "config.json"))]


def name_for_quality(quality: int) -> str:
  """'selic-q{quality}'; UserError if that quality does not exist."""
  name = f"selic-q{quality}"
  if name not in SELIC_NAMES:
    raise UserError(f"--quality must be 1..{len(SELIC_NAMES)} (1 = smallest files), got {quality}")
  return name


def model_dir(name: str) -> str:
  """Directory of a shipped model; UserError naming the known ones otherwise."""
  if name not in NAMES:
    raise UserError(f"unknown pretrained model {name!r}; shipped: {', '.join(NAMES)}")
  path = os.path.join(ROOT, name)
  if not os.path.isfile(os.path.join(path, "config.json")):
    raise UserError(f"pretrained model {name!r} is not in this installation ({path})")
  return path


def resolve(path_or_name: str) -> str:
  """A shipped model's directory for its name; any other string is returned as a path."""
  return model_dir(path_or_name) if path_or_name in NAMES else path_or_name


def dir_for_model_id(model_id: bytes, what: str, flag: str) -> str:
  """The shipped model that wrote a file (`what`, e.g. 'this .jsc'); UserError telling to pass `flag` otherwise."""
  found = find_by_model_id(model_id)
  if found is None:
    raise UserError(f"{what} was made by model {model_id.hex()}, which is not a shipped model: pass {flag}")
  return found


def find_by_model_id(model_id: bytes) -> str | None:
  """The shipped model directory whose model id is `model_id`, if any (for decoding without --model)."""
  for name in available():
    with open(os.path.join(ROOT, name, "config.json")) as f:
      if json.load(f).get("model_id") == model_id.hex():
        return os.path.join(ROOT, name)
  return None


def load(name: str = f"selic-q{DEFAULT_QUALITY}"):
  """Loads a shipped model (a `codec.model_io.CodecModel`)."""
  from jaxsemic.codec.model_io import load_model  # pylint: disable=import-outside-toplevel
  return load_model(model_dir(name))
