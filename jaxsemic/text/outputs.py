"""Atomic output files for the text commands: write a temp file beside the target, then os.replace."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from jaxsemic.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False) -> Iterator[str]:
  """Yields a temp path to write; on success it replaces `path` (mode 0666 less umask), else it is removed."""
  path = Path(path)
  if path.exists() and not force:
    raise UserError(f"{path} exists; pass --force to overwrite it")
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
  os.close(fd)
  try:
    yield tmp
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions `open` would
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)
