"""SEDIC descriptions: schema reading and validation, word limits (Table V), the strings sent."""

from __future__ import annotations

import json

import pytest

from jaxsemic.errors import UserError
from jaxsemic.sedic import descriptions as D

ROW = {"file": "photos/cat.png", "caption": "a cat on a sofa",
       "overall": "A gray  cat sleeps on a red sofa in a sunny living room with plants.",
       "objects": [{"name": "gray cat", "details": "Fluffy gray cat curled up, eyes closed, at the center."},
                   {"name": "red sofa", "details": "Worn red velvet sofa with two cushions."},
                   {"name": "plants", "details": "Potted green plants on the windowsill at right."},
                   {"name": "window", "details": "Bright window."}]}


def _write(tmp_path, text: str, name: str = "d.jsonl"):
  path = tmp_path / name
  path.write_text(text, encoding="utf-8")
  return path


def test_read_jsonl_by_file_and_basename(tmp_path):
  other = dict(ROW, file="dog.png", overall="A dog.", objects=[])
  path = _write(tmp_path, json.dumps(other) + "\n\n" + json.dumps(ROW) + "\n")
  d = D.read_descriptions(path, "cat.png")
  assert d.overall == ROW["overall"] and d.caption == "a cat on a sofa"
  assert d.objects[0] == D.ObjectText("gray cat", ROW["objects"][0]["details"]) and len(d.objects) == 4
  assert D.read_descriptions(path, "/somewhere/else/dog.png").objects == ()
  assert list(D.read_all_descriptions(path)) == ["dog.png", "photos/cat.png"]
  assert D.SidecarDescriber(path).describe("/tmp/cat.png") == d
  with pytest.raises(UserError, match="no descriptions for bird.png"):
    D.read_descriptions(path, "bird.png")
  with pytest.raises(UserError, match="describes 2 images"):
    D.read_descriptions(path)


def test_single_object_file(tmp_path):
  row = {k: v for k, v in ROW.items() if k != "file"}
  path = _write(tmp_path, json.dumps(row, indent=2), "one.json")
  assert D.read_descriptions(path).overall == ROW["overall"]
  assert D.read_descriptions(path, "anything.png").overall == ROW["overall"]


@pytest.mark.parametrize("text, message", [
  ("{not json\n", "not a JSON line"),
  ("", "is empty"),
  (json.dumps({"file": "a.png", "objects": []}), "\"overall\" must be a string"),
  (json.dumps({"file": "a.png", "overall": "x", "objects": {}}), "\"objects\" must be a list"),
  (json.dumps({"file": "a.png", "overall": "x", "objects": [{"details": "d"}]}), "objects\\[0\\]"),
  (json.dumps({"file": "a.png", "overall": "x", "objects": [{"name": " ", "details": "d"}]}), "empty name"),
  (json.dumps({"file": "a.png", "overall": "x", "caption": 3}), "\"caption\" must be a string"),
  ("[1, 2]", "expected a JSON object"),
])
def test_invalid_files(tmp_path, text, message):
  with pytest.raises(UserError, match=message):
    D.read_descriptions(_write(tmp_path, text), "a.png")


def test_missing_and_binary_files(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    D.read_descriptions(tmp_path / "nope.jsonl")
  path = tmp_path / "bin.jsonl"
  path.write_bytes(b"\xff\xfe\x00")
  with pytest.raises(UserError, match="not UTF-8"):
    D.read_descriptions(path)
  with pytest.raises(UserError, match="\"file\" string"):
    D.read_all_descriptions(_write(tmp_path, json.dumps({"overall": "x"}) + "\n" + json.dumps({"overall": "y"})))


def test_limit_words():
  desc = D.parse_descriptions(ROW, "test")
  out = D.limit_words(desc, j=2, l_d=3, l_all=4)
  assert out.overall == "A gray  cat sleeps"  # original spacing kept inside the kept words
  assert [o.details for o in out.objects] == ["Fluffy gray cat", "Worn red velvet"]
  assert [o.name for o in out.objects] == ["gray cat", "red sofa"]
  assert D.limit_words(desc, j=0).objects == ()
  assert D.limit_words(desc, j=3, l_d=30, l_all=50).overall == ROW["overall"]
  assert D.limit_words(desc, j=3, l_d=0, l_all=0).overall == ""
  short = D.Descriptions("Two words", (D.ObjectText("a", "b"),))
  assert D.limit_words(short, j=3) == D.Descriptions("Two words", (D.ObjectText("a", "b"),))
  for bad in ({"j": 4}, {"j": -1}, {"l_d": 256}, {"l_all": 1.5}):
    with pytest.raises(UserError, match="must be an integer"):
      D.limit_words(desc, **bad)


def test_first_words():
  assert D.first_words("  one\ttwo  three ", 2) == "one\ttwo"
  assert D.first_words("one", 5) == "one"
  assert D.first_words("", 3) == ""


def test_texts_roundtrip():
  desc = D.limit_words(D.parse_descriptions(ROW, "test"))
  strings = D.texts(desc)
  assert strings[:3] == [desc.overall, "gray cat", desc.objects[0].details] and len(strings) == 7
  assert D.from_texts(strings) == D.Descriptions(desc.overall, desc.objects)
  no_names = D.from_texts(D.texts(desc, names=False), names=False)
  assert [o.details for o in no_names.objects] == [o.details for o in desc.objects]
  assert D.from_texts(["only overall"]).objects == ()
  with pytest.raises(UserError, match="do not form"):
    D.from_texts(["overall", "name without details"])
