"""CompressAI's published checkpoints: the table, download with hash check, conversion into a cached model.

The table (`compressai_pretrained.json`, package data) holds CompressAI's file names, whose last `-xxxxxxxx`
is the SHA-256 prefix torch.hub checks, the model sizes per quality, and CompressAI's Kodak numbers. A model is
downloaded once into a temporary file, checked against that prefix, converted (`compressai_import`) and cached
as `<cache>/models/<arch>-<metric>-q<quality>/`; nothing is cached when any step fails.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import os
import re
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Any, Callable

from jaxsemic.errors import UserError

TABLE = os.path.join(os.path.dirname(__file__), "compressai_pretrained.json")
URL_ENV = "JAXSEMIC_ZOO_URL"  # replaces CompressAI's root URL (a mirror, or a local server in tests)
METRICS = ("mse", "ms-ssim")
_HASH = re.compile(r"-([a-f0-9]+)\.")  # the file-name hash prefix, as torch.hub reads it
_CHUNK = 1 << 20


@functools.lru_cache(maxsize=1)
def table() -> dict[str, Any]:
  """The packaged table: {"root_url", "models": [{arch, metric, quality, N, M, file, kodak}, ...]}."""
  with open(TABLE) as f:
    return json.load(f)


def entry(arch: str, quality: int, metric: str = "mse") -> dict[str, Any]:
  """The table row of one published model; UserError naming the valid choices otherwise."""
  rows = [r for r in table()["models"] if r["arch"] == arch]
  if not rows:
    names = sorted({r["arch"] for r in table()["models"]})
    raise UserError(f"no pretrained {arch!r}; architectures: {', '.join(names)}")
  if metric not in METRICS:
    raise UserError(f"unknown metric {metric!r}; choose {' or '.join(METRICS)}")
  match = [r for r in rows if r["metric"] == metric and r["quality"] == quality]
  if not match:
    qualities = sorted({r["quality"] for r in rows if r["metric"] == metric})
    raise UserError(f"{arch} ({metric}) has qualities {qualities[0]}-{qualities[-1]}, not {quality}")
  return match[0]


def hash_prefix(file_name: str) -> str:
  """The SHA-256 prefix CompressAI puts in its file names (`...-446d5c7f.pth.tar` -> `446d5c7f`)."""
  m = _HASH.search(file_name)
  if not m:
    raise ValueError(f"no hash prefix in {file_name!r}")
  return m.group(1)


def cache_root() -> str:
  """$JAXSEMIC_CACHE, else $XDG_CACHE_HOME/jaxsemic, else ~/.cache/jaxsemic (`runtime.cache_root`)."""
  from jaxsemic import runtime  # pylint: disable=import-outside-toplevel
  return runtime.cache_root()


def model_dir(row: dict[str, Any]) -> str:
  """Where the converted model of a table row is cached."""
  return os.path.join(cache_root(), "models", f"{row['arch']}-{row['metric']}-q{row['quality']}")


def url(row: dict[str, Any]) -> str:
  """Download address: CompressAI's root URL, or $JAXSEMIC_ZOO_URL."""
  return f"{os.environ.get(URL_ENV) or table()['root_url']}".rstrip("/") + "/" + row["file"]


def download(address: str, dest: str, timeout: float = 60.0) -> tuple[str, int]:
  """Streams `address` into the file `dest`; (SHA-256 hex digest, bytes). Raises OSError-like errors as is."""
  from tqdm import tqdm  # pylint: disable=import-outside-toplevel
  digest, n = hashlib.sha256(), 0
  with urllib.request.urlopen(address, timeout=timeout) as response, open(dest, "wb") as out:
    expected = response.headers.get("Content-Length")
    with tqdm(total=int(expected) if expected else None, unit="B", unit_scale=True, disable=None,
              leave=False) as bar:  # shown on a terminal only
      while chunk := response.read(_CHUNK):
        digest.update(chunk)
        out.write(chunk)
        n += len(chunk)
        bar.update(len(chunk))
  if expected is not None and int(expected) != n:
    raise http.client.IncompleteRead(b"", int(expected) - n)
  return digest.hexdigest(), n


def import_hint(row: dict[str, Any]) -> str:
  """How to convert the file when it was fetched elsewhere."""
  return (f"fetch it elsewhere, then: jaxsemic import-compressai {row['file']} --arch {row['arch']} "
          f"--out {model_dir(row)}")


def fetch(arch: str, quality: int, metric: str = "mse", *, force: bool = False,
          convert: Callable[..., Any]) -> tuple[str, bool]:
  """(model directory, whether it was already cached) of a published CompressAI model; downloads if needed.

  convert(path, arch, out, force=, metadata=) writes the model directory (the import-compressai command's, passed
  in so that the zoo does not import the codec package).
  """
  row = entry(arch, quality, metric)
  out = model_dir(row)
  if os.path.isfile(os.path.join(out, "config.json")) and not force:
    return out, True
  address, want = url(row), hash_prefix(row["file"])
  os.makedirs(os.path.dirname(out), exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), prefix=".download-", suffix=".pth.tar")
  os.close(fd)
  try:
    print(f"downloading {address}", file=sys.stderr)
    try:
      digest, size = download(address, tmp)
    except http.client.IncompleteRead as e:
      raise UserError(f"download of {address} was cut short ({e.expected} bytes missing); nothing was cached; "
                      f"try again, or {import_hint(row)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, socket.timeout) as e:
      reason = getattr(e, "reason", None) or e
      raise UserError(f"cannot download {address} ({reason}); {import_hint(row)}") from None
    if not digest.startswith(want):
      raise UserError(f"{row['file']}: SHA-256 {digest[:len(want)]}... does not match CompressAI's published "
                      f"prefix {want} ({size} bytes; a corrupt or altered download); nothing was cached")
    convert(tmp, arch, out, force=True, metadata={
        "source": "jaxsemic zoo get", "url": address, "sha256": digest, "arch": arch, "metric": metric,
        "quality": quality, "kodak": row["kodak"]})
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return out, False
