"""Files in and out, one policy for every command: atomic writes, which files are images, caption files.

- Outputs are never overwritten without `--force` (one wording of the error) and appear whole or not at all: they
  are written to a temporary file beside the target, which `os.replace` then moves over it. Their mode is what
  `open()` would give (0666 less the umask), not `mkstemp`'s private 0600.
- A remote output (`gs://bucket/x.jsc`, any etils.epath scheme) is written to a local temporary file and then
  uploaded as one object: an object store makes an upload visible whole or not at all (an interrupted upload
  leaves no object), which is the atomicity `os.replace` gives locally. Buckets have no folders to create.
- An image file is one whose name ends in one of IMAGE_EXTENSIONS and does not start with "." (macOS `._x.jpg`
  sidecars and other hidden files are not images).
- Captions come from jsonl sidecars, one reader (`read_captions`) for training, evaluation and the commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from etils import epath

from jaxsemic.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp")


def is_remote(path: str | os.PathLike) -> bool:
  """True for a URL-style path such as gs://bucket/dir (anything with a scheme)."""
  return "://" in os.fspath(path)


def as_epath(path: str | os.PathLike) -> epath.Path:
  """`path` as an etils.epath.Path (orbax's path type): remote schemes as given, local paths absolute."""
  return epath.Path(path) if is_remote(path) else epath.Path(os.path.abspath(os.fspath(path)))


def copy_tree(src: epath.Path, dst: epath.Path) -> None:
  """Copies folder `src` to `dst` file by file (local <-> bucket); config.json files last, as load reads them first."""
  dst.mkdir(parents=True, exist_ok=True)
  for child in sorted(src.iterdir(), key=lambda c: (c.name == "config.json", c.name)):
    if child.is_dir():
      copy_tree(child, dst / child.name)
    else:
      (dst / child.name).write_bytes(child.read_bytes())


def exists_error(path: str | os.PathLike) -> UserError:
  """The one error for an existing output."""
  return UserError(f"{path} exists; pass --force to overwrite it")


def _check_remote_output(path: str, force: bool, inputs: tuple[str | os.PathLike, ...]) -> None:
  """check_output for a bucket path: not a folder, not an input, not existing without force, bucket exists."""
  target = epath.Path(path)
  if path.endswith("/") or target.is_dir():
    raise UserError(f"output {path} is a directory; give a file name")
  if any(path == os.fspath(i) for i in inputs):
    raise UserError(f"output {path} is the input file; refusing to overwrite it (even with --force)")
  if target.exists() and not force:
    raise exists_error(path)
  scheme, rest = path.split("://", 1)
  bucket = f"{scheme}://{rest.split('/', 1)[0]}"
  if not epath.Path(bucket).exists():
    raise UserError(f"output bucket does not exist: {bucket}")


def check_output(path: str | os.PathLike, force: bool, make_parent: bool = False,
                 inputs: tuple[str | os.PathLike, ...] = ()) -> None:
  """Fails early (before any work) if `path` exists without force, is a directory or one of `inputs` (even with
  force, after resolving links), or its folder (its bucket, for a remote path) is missing."""
  if is_remote(path):
    _check_remote_output(os.fspath(path), force, inputs)
    return
  if os.path.isdir(path):
    raise UserError(f"output {path} is a directory; give a file name")
  if any(os.path.realpath(path) == os.path.realpath(i) for i in inputs):
    raise UserError(f"output {path} is the input file; refusing to overwrite it (even with --force)")
  if os.path.exists(path) and not force:
    raise exists_error(path)
  parent = os.path.dirname(os.path.abspath(path))
  if make_parent:
    os.makedirs(parent, exist_ok=True)
  elif not os.path.isdir(parent):
    raise UserError(f"output folder does not exist: {parent}")


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def default_mode(directory: bool = False) -> int:
  """The mode `open()` / `os.mkdir` would give a new file / folder (0666 / 0777 less the umask)."""
  return (0o777 if directory else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False, make_parent: bool = False) -> Iterator[str]:
  """Yields a temporary path to write; on success it replaces `path`, on an error it is removed."""
  check_output(path, force, make_parent)
  if is_remote(path):
    with _remote_upload(os.fspath(path)) as tmp:
      yield tmp
    return
  path = os.path.abspath(path)
  # The target's extension kept last: writers that pick the format by extension (savefig, np.savez) still work.
  fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", suffix=os.path.splitext(path)[1],
                             dir=os.path.dirname(path))
  os.close(fd)
  try:
    yield tmp
    os.chmod(tmp, default_mode())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


@contextlib.contextmanager
def _remote_upload(path: str) -> Iterator[str]:
  """A local temporary file (with the target's name) that is uploaded to `path` in one write on success."""
  with tempfile.TemporaryDirectory(prefix="jaxsemic-upload-") as folder:
    tmp = os.path.join(folder, os.path.basename(path))
    yield tmp
    with open(tmp, "rb") as f:
      epath.Path(path).write_bytes(f.read())


def write_bytes(path: str | os.PathLike, data: bytes, force: bool = False) -> None:
  """Writes bytes atomically."""
  with atomic_path(path, force) as tmp, open(tmp, "wb") as f:
    f.write(data)


def write_json(path: str | os.PathLike, obj: Any, force: bool = False) -> None:
  """Writes indented JSON (and a final newline) atomically."""
  with atomic_path(path, force) as tmp, open(tmp, "w", encoding="utf-8") as f:
    json.dump(obj, f, indent=2)
    f.write("\n")


def is_image_name(name: str) -> bool:
  """Whether a file name counts as an image (the same test for training, evaluation and every command)."""
  base = os.path.basename(name)
  return base.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith(".")


def image_files(folder: str, recursive: bool = False) -> list[str]:
  """Sorted image paths in `folder` (and below it if recursive); empty if there are none."""
  if not recursive:
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if is_image_name(f))
  paths = []
  for root, dirs, names in os.walk(folder, followlinks=True):
    dirs.sort()
    paths.extend(os.path.join(root, n) for n in names if is_image_name(n))
  return sorted(paths)


def read_captions(path: str | os.PathLike, strict: bool = True) -> dict[str, list[str]]:
  """Caption sidecar lines `{"file": ..., "captions": [...]}` (or `"caption": "..."`) -> {file: [captions]}.

  Files keep their first-seen order; repeated files have their captions merged. strict: a bad line is a
  UserError naming it (commands, evaluation); otherwise bad lines and lines without captions are skipped
  (training data folders, where sidecars come from elsewhere).
  """
  if not os.path.isfile(path):
    raise UserError(f"captions file {path} does not exist")
  out: dict[str, list[str]] = {}
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        file, caps = _caption_row(line, f"{path}:{n}")
      except UserError:
        if strict:
          raise
        continue
      if caps is None:
        if not strict:
          continue
        caps = []
      out.setdefault(file, []).extend(caps)
  return out


def _caption_row(line: str, where: str) -> tuple[str, list[str] | None]:
  """(file, captions or None if the line has none) of one jsonl line; UserError if it is malformed."""
  try:
    row = json.loads(line)
  except json.JSONDecodeError as e:
    raise UserError(f"{where}: not a JSON line ({e.msg})") from e
  if not isinstance(row, dict) or not isinstance(row.get("file"), str):
    raise UserError(f"{where}: expected an object with a \"file\" string")
  caps = row.get("captions", [row["caption"]] if "caption" in row else None)
  if isinstance(caps, str):
    caps = [caps]
  if caps is not None and (not isinstance(caps, list) or not all(isinstance(c, str) for c in caps)):
    raise UserError(f"{where}: \"captions\" must be a list of strings")
  return row["file"], caps
