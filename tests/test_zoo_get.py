"""`jaxsemic zoo list / get`: the packaged table, and downloads from a local HTTP server (good, wrong hash,
truncated, no server), using a tiny bmshj2018-factorized checkpoint written by torch with CompressAI's names."""

import functools
import hashlib
import http.server
import io
import json
import os
import re
import socket
import threading

import numpy as np
import pytest

from jaxsemic import cli
from jaxsemic.codec import api
from jaxsemic.codec.model_io import load_model
from jaxsemic.zoo import pretrained

torch = pytest.importorskip("torch")
FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "compressai", "bmshj2018-factorized.npz")
ARCH = "bmshj2018-factorized"


@functools.lru_cache(maxsize=None)
def checkpoint() -> bytes:
  """The fixture's state dict as CompressAI publishes it: legacy torch.save layout, `_matrices.0`-style names."""
  with np.load(FIXTURE) as z:
    state = {re.sub(r"bottleneck\.(matrices|biases|factors)", r"bottleneck._\1", k[3:]): torch.from_numpy(z[k])
             for k in z.files if k.startswith("sd/")}
  buf = io.BytesIO()
  torch.save(state, buf, _use_new_zipfile_serialization=False)
  return buf.getvalue()


class Server:
  """A local HTTP server in a thread serving one file; `truncate` sends half of it under the full length."""

  def __init__(self, files: dict[str, bytes]):
    self.files, self.truncate, self.requests = files, False, 0
    owner = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):  # noqa: N802 - http.server's name
        owner.requests += 1
        body = owner.files.get(self.path.lstrip("/"))
        if body is None:
          self.send_error(404)
          return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if owner.truncate else body)

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
    self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
    self.thread.start()

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()


def row(prefix: str) -> dict:
  return {"arch": ARCH, "metric": "mse", "quality": 1, "N": 8, "M": 12, "file": f"tiny-1-{prefix}.pth.tar",
          "kodak": {"bpp": 0.1, "psnr": 25.0, "ms-ssim": 0.9}}


@pytest.fixture
def zoo(tmp_path, monkeypatch):
  """A served fixture checkpoint, a table naming it (right hash unless changed), a private cache."""
  data = checkpoint()
  good = row(hashlib.sha256(data).hexdigest()[:8])
  rows = [good]
  monkeypatch.setattr(pretrained, "table", lambda: {"root_url": "http://unused.invalid", "models": rows})
  monkeypatch.setenv("JAXSEMIC_CACHE", str(tmp_path / "cache"))
  server = Server({good["file"]: data, row("00000000")["file"]: data})
  monkeypatch.setenv(pretrained.URL_ENV, server.url)
  yield server, rows
  server.close()


def get(capsys, *extra) -> tuple[int, str, str]:
  code = cli.main(["zoo", "get", ARCH, "--quality", "1", *extra])
  out, err = capsys.readouterr()
  return code, out, err


def test_get_downloads_verifies_converts_and_caches(zoo, tmp_path, capsys):
  server, _ = zoo
  code, out, err = get(capsys, "--json")
  assert code == 0, err
  info = json.loads(out)
  assert info["model"] == str(tmp_path / "cache" / "models" / f"{ARCH}-mse-q1") and not info["cached"]
  model = load_model(info["model"])
  assert (model.cfg.N, model.cfg.M) == (8, 12) and model.metadata["sha256"] == hashlib.sha256(checkpoint()).hexdigest()
  image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
  data, _ = api.compress(model, image)
  assert api.decompress(model, data).shape == image.shape
  # Second call: the cached directory, no download.
  code, out, _ = get(capsys)
  assert code == 0 and out.strip() == info["model"] and server.requests == 1
  assert os.listdir(tmp_path / "cache" / "models") == [f"{ARCH}-mse-q1"]  # no download left behind


def test_wrong_hash_is_refused_and_nothing_cached(zoo, tmp_path, capsys):
  _, rows = zoo
  rows[0] = row("00000000")
  code, out, err = get(capsys)
  assert code == 1 and out == ""
  assert "does not match CompressAI's published prefix 00000000" in err and "nothing was cached" in err
  assert err.count("\n") == 2  # "downloading ..." and the error
  assert os.listdir(tmp_path / "cache" / "models") == []


def test_truncated_download_is_an_error(zoo, tmp_path, capsys):
  server, _ = zoo
  server.truncate = True
  code, _, err = get(capsys)
  assert code == 1 and "was cut short" in err and "import-compressai" in err
  assert os.listdir(tmp_path / "cache" / "models") == []


def test_offline_says_how_to_import_a_file_fetched_elsewhere(zoo, tmp_path, capsys, monkeypatch):
  with socket.socket() as s:  # a port nothing listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  monkeypatch.setenv(pretrained.URL_ENV, f"http://127.0.0.1:{port}")
  code, _, err = get(capsys)
  last = err.strip().splitlines()[-1]
  assert code == 1 and "cannot download" in last
  assert "jaxsemic import-compressai tiny-1-" in last and f"--arch {ARCH} --out {tmp_path}/cache/models/" in last


def test_cache_location(monkeypatch, tmp_path):
  monkeypatch.delenv("JAXSEMIC_CACHE", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert pretrained.model_dir(row("x")) == str(tmp_path / "jaxsemic" / "models" / f"{ARCH}-mse-q1")
  monkeypatch.setenv("JAXSEMIC_CACHE", str(tmp_path / "c"))
  assert pretrained.cache_root() == str(tmp_path / "c")


def test_packaged_table_is_compressais():
  """File names and hash prefixes as compressai/zoo/image.py publishes them; Kodak numbers rising with quality."""
  rows = pretrained.table()["models"]
  assert len(rows) == 88 and pretrained.table()["root_url"] == "https://compressai.s3.amazonaws.com/models/v1"
  assert pretrained.entry(ARCH, 1)["file"] == "bmshj2018-factorized-prior-1-446d5c7f.pth.tar"
  assert pretrained.hash_prefix(pretrained.entry("cheng2020-attn", 6, "ms-ssim")["file"]) == "216423ec"
  assert all(len(pretrained.hash_prefix(r["file"])) == 8 for r in rows)
  for arch in {r["arch"] for r in rows}:
    for metric in pretrained.METRICS:
      bpp = [r["kodak"]["bpp"] for r in rows if r["arch"] == arch and r["metric"] == metric]
      assert len(bpp) == (6 if arch.startswith("cheng") else 8) and bpp == sorted(bpp)


def test_list_and_bad_choices(capsys):
  assert cli.main(["zoo", "list", "--arch", "mbt2018", "--metric", "mse"]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 10 and lines[1].split()[:5] == ["mbt2018", "mse", "1", "192", "192"]
  assert cli.main(["zoo", "list", "--json"]) == 0
  assert len(json.loads(capsys.readouterr().out)) == 88
  assert cli.main(["zoo", "get", "cheng2020-anchor", "--quality", "7"]) == 1
  assert "has qualities 1-6, not 7" in capsys.readouterr().err
