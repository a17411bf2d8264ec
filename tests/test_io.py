"""jaxsemic.io: one overwrite error, atomic writes with one permission policy, one rule for image files."""

import os
import stat

import pytest

from jaxsemic import io
from jaxsemic.errors import UserError


def test_atomic_write_mode_overwrite_and_failure(tmp_path):
  path = tmp_path / "out.json"
  io.write_json(path, {"a": 1})
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # as open() would, not mkstemp's 0600
  with pytest.raises(UserError, match=r"out.json exists; pass --force to overwrite it"):
    io.write_bytes(path, b"x")
  io.write_bytes(path, b"x", force=True)
  assert path.read_bytes() == b"x"
  with pytest.raises(RuntimeError):
    with io.atomic_path(tmp_path / "half.bin") as tmp:
      open(tmp, "wb").write(b"partial")
      raise RuntimeError("writer failed")
  assert sorted(os.listdir(tmp_path)) == ["out.json"]  # no partial file, no temporary left behind
  with pytest.raises(UserError, match="output folder does not exist"):
    io.write_bytes(tmp_path / "missing" / "x.bin", b"")


def test_one_rule_for_image_files(tmp_path):
  for name in ("a.PNG", "b.jpeg", "c.webp", "._d.jpg", ".e.png", "f.txt", "sub/g.tif"):
    (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / name).write_bytes(b"")
  assert [os.path.basename(p) for p in io.image_files(str(tmp_path))] == ["a.PNG", "b.jpeg", "c.webp"]
  assert [os.path.basename(p) for p in io.image_files(str(tmp_path), recursive=True)] == [
      "a.PNG", "b.jpeg", "c.webp", "g.tif"]


def test_one_captions_reader_strict_or_lenient(tmp_path):
  path = tmp_path / "c.jsonl"
  path.write_text('{"file": "a.png", "captions": ["x", "y"]}\n{"file": "b.png", "caption": "z"}\n\n'
                  '{not json\n{"file": "a.png", "captions": ["w"]}\n{"file": "c.png"}\n')
  with pytest.raises(UserError, match=r"c.jsonl:4: not a JSON line"):
    io.read_captions(path)
  assert io.read_captions(path, strict=False) == {"a.png": ["x", "y", "w"], "b.png": ["z"]}
  with pytest.raises(UserError, match="does not exist"):
    io.read_captions(tmp_path / "none.jsonl", strict=False)
