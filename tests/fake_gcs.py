"""A local fake of Google Cloud Storage's JSON API, enough for tensorstore (orbax), gcsfs (etils.epath) and
google-cloud-storage (tensorboardX) to read and write `gs://` paths in tests.

The clients are pointed at it by their documented test endpoints (`environment(url)`):
TENSORSTORE_GCS_HTTP_URL (tensorstore's gcs driver) and STORAGE_EMULATOR_HOST (gcsfs, google-cloud-storage).
Objects live in memory with per-object generations; the generation preconditions tensorstore's conditional
writes rely on (ifGenerationMatch / ifGenerationNotMatch, 0 = "must not exist") are honoured, as are byte
ranges. Not implemented (answered 400 and recorded in `FakeGcs.unhandled`, so a test sees a client using
them): object versions, ACLs, batch requests, compose, signed URLs.

Standalone, for trying a bucket workdir by hand: `python tests/fake_gcs.py --port 4443 --bucket my-bucket`
prints the environment variables to export.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import http.server
import itertools
import json
import re
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

_UPLOAD_ID = itertools.count(1)


class _Object:
  """One stored object: its bytes and its generation."""

  def __init__(self, data: bytes, generation: int, content_type: str):
    self.data, self.generation, self.content_type = data, generation, content_type
    self.updated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class FakeGcs(http.server.ThreadingHTTPServer):
  """An in-memory GCS on 127.0.0.1 (port 0: a free one); `url` is its endpoint."""

  daemon_threads = True

  def __init__(self, buckets: tuple[str, ...] = ("jaxsemic-test",), port: int = 0):
    super().__init__(("127.0.0.1", port), _Handler)
    self.lock = threading.Lock()
    self.buckets = set(buckets)
    self.objects: dict[tuple[str, str], _Object] = {}
    self.uploads: dict[str, dict[str, Any]] = {}  # resumable upload id -> {bucket, name, data, query}
    self.generation = itertools.count(1_700_000_000_000_001)
    self.unhandled: list[str] = []
    self.requests = 0

  def handle_error(self, request: Any, client_address: Any) -> None:
    """Clients dropping idle keep-alive connections is normal; anything else is printed as usual."""
    if not isinstance(sys.exc_info()[1], ConnectionError):
      super().handle_error(request, client_address)

  @property
  def url(self) -> str:
    """http://127.0.0.1:PORT"""
    return f"http://127.0.0.1:{self.server_address[1]}"

  def names(self, bucket: str, prefix: str = "") -> list[str]:
    """Sorted object names in `bucket` under `prefix`."""
    with self.lock:
      return sorted(n for b, n in self.objects if b == bucket and n.startswith(prefix))


def environment(url: str) -> dict[str, str]:
  """The variables that point tensorstore, gcsfs and google-cloud-storage at a fake endpoint."""
  return {"TENSORSTORE_GCS_HTTP_URL": url, "STORAGE_EMULATOR_HOST": url,
          "GOOGLE_AUTH_TOKEN_FOR_TESTING": "fake-token",  # tensorstore: no credentials search
          "GOOGLE_CLOUD_PROJECT": "fake-project"}


@contextlib.contextmanager
def serve(buckets: tuple[str, ...] = ("jaxsemic-test",)) -> Iterator[FakeGcs]:
  """A running FakeGcs on a free port, shut down on exit."""
  server = FakeGcs(buckets)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    yield server
  finally:
    server.shutdown()
    server.server_close()


class _Precondition(Exception):
  """A generation precondition failed (412), or ifGenerationNotMatch matched on a read (304)."""

  def __init__(self, status: int):
    super().__init__(status)
    self.status = status


def _check_generation(obj: _Object | None, query: dict[str, str], read: bool = False) -> None:
  current = obj.generation if obj is not None else 0
  if "ifGenerationMatch" in query and int(query["ifGenerationMatch"]) != current:
    raise _Precondition(412)
  if "ifGenerationNotMatch" in query and int(query["ifGenerationNotMatch"]) == current:
    raise _Precondition(304 if read else 412)


def _metadata(bucket: str, name: str, obj: _Object) -> dict[str, Any]:
  return {"kind": "storage#object", "id": f"{bucket}/{name}/{obj.generation}", "name": name, "bucket": bucket,
          "generation": str(obj.generation), "metageneration": "1", "contentType": obj.content_type,
          "size": str(len(obj.data)), "md5Hash": _b64(hashlib.md5(obj.data).digest()),
          "timeCreated": obj.updated, "updated": obj.updated, "storageClass": "STANDARD",
          "selfLink": f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}",
          "mediaLink": f"/download/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}"
                       f"?generation={obj.generation}&alt=media"}


def _b64(data: bytes) -> str:
  import base64  # pylint: disable=import-outside-toplevel
  return base64.b64encode(data).decode()


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
  """[start, end) of a `bytes=a-b` / `bytes=a-` / `bytes=-n` Range header; None for the whole object."""
  if not header:
    return None
  m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
  if not m:
    return None
  a, b = m.groups()
  if a == "":
    return max(size - int(b), 0), size
  return int(a), min(int(b) + 1, size) if b else size


def _multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], bytes]:
  """(JSON metadata, media) of a multipart/related upload body."""
  boundary = re.search(r'boundary="?([^";]+)"?', content_type).group(1).encode()
  parts = body.split(b"--" + boundary)[1:-1]

  def content(part: bytes) -> bytes:
    part = part[2:] if part.startswith(b"\r\n") else part[1:] if part.startswith(b"\n") else part
    sep = re.search(rb"\r?\n\r?\n", part)
    data = part[sep.end():]
    return data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data

  return json.loads(content(parts[0])), content(parts[1])


class _Handler(http.server.BaseHTTPRequestHandler):
  """Routes the JSON API paths the three clients use."""

  protocol_version = "HTTP/1.1"
  server: FakeGcs

  def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
    del format, args  # quiet

  # --- plumbing ---

  def _body(self) -> bytes:
    if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
      out = b""
      while True:
        size = int(self.rfile.readline().strip().split(b";")[0], 16)
        if size == 0:
          self.rfile.readline()
          return out
        out += self.rfile.read(size)
        self.rfile.readline()
    return self.rfile.read(int(self.headers.get("Content-Length") or 0))

  def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
            content_type: str = "application/json") -> None:
    self.send_response(status)
    for k, v in (headers or {}).items():
      self.send_header(k, v)
    if status not in (204, 304):
      self.send_header("Content-Type", content_type)
      self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    if status not in (204, 304) and self.command != "HEAD":
      self.wfile.write(body)

  def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
    self._send(status, json.dumps(obj).encode(), headers)

  def _error(self, status: int, message: str) -> None:
    self._json(status, {"error": {"code": status, "message": message, "errors": [{"message": message}]}})

  def _route(self) -> None:
    self.server.requests += 1
    url = urllib.parse.urlsplit(self.path)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
    segments = url.path.split("/")[1:]  # object names arrive %-encoded, so '/' splits only the API path
    body = self._body() if self.command in ("POST", "PUT", "PATCH") else b""
    try:
      handled = self._dispatch(segments, query, body)
    except _Precondition as e:
      if e.status == 304:
        self._send(304)
      else:
        self._error(412, "Precondition Failed")
      return
    if not handled:
      self.server.unhandled.append(f"{self.command} {self.path}")
      self._error(400, f"fake_gcs: not implemented: {self.command} {url.path}")

  do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _route

  def _dispatch(self, seg: list[str], query: dict[str, str], body: bytes) -> bool:
    unq = urllib.parse.unquote
    m = self.command
    if seg[:1] == ["download"]:
      seg = seg[1:]
    if seg[:1] == ["upload"] and "upload_id" in query and m in ("PUT", "POST"):
      return self._resume(query["upload_id"], body)
    if seg[:4] == ["upload", "storage", "v1", "b"] and len(seg) == 6 and seg[5] == "o" and m == "POST":
      return self._upload(unq(seg[4]), query, body)
    if seg[:3] != ["storage", "v1", "b"]:
      return False
    rest = seg[3:]
    if not rest or rest == [""]:
      if m == "GET":
        self._json(200, {"kind": "storage#buckets", "items": [{"name": b} for b in sorted(self.server.buckets)]})
        return True
      return False
    bucket = unq(rest[0])
    if bucket not in self.server.buckets:
      self._error(404, f"bucket {bucket} not found")
      return True
    if len(rest) == 1 and m == "GET":
      self._json(200, {"kind": "storage#bucket", "name": bucket, "id": bucket, "location": "US",
                       "storageClass": "STANDARD", "metageneration": "1"})
      return True
    if len(rest) == 2 and rest[1] == "o" and m == "GET":
      self._list(bucket, query)
      return True
    if len(rest) == 3 and rest[1] == "o":
      return self._object(bucket, unq(rest[2]), query)
    if len(rest) == 8 and rest[1] == "o" and rest[3] in ("rewriteTo", "copyTo") and m == "POST":
      return self._copy(bucket, unq(rest[2]), unq(rest[5]), unq(rest[7]), rest[3], query)
    if len(rest) == 6 and rest[1] == "o" and rest[3] == "moveTo" and m == "POST":
      return self._copy(bucket, unq(rest[2]), bucket, unq(rest[5]), "moveTo", query)
    return False

  # --- the API ---

  def _object(self, bucket: str, name: str, query: dict[str, str]) -> bool:
    with self.server.lock:
      obj = self.server.objects.get((bucket, name))
    if "generation" in query and obj is not None and str(obj.generation) != query["generation"]:
      obj = None
    if self.command in ("GET", "HEAD"):
      if obj is None:
        self._error(404, f"No such object: {bucket}/{name}")
        return True
      _check_generation(obj, query, read=True)
      headers = {"x-goog-generation": str(obj.generation), "x-goog-metageneration": "1",
                 "x-goog-stored-content-length": str(len(obj.data)), "ETag": f'"{obj.generation}"'}
      if query.get("alt") != "media":
        self._json(200, _metadata(bucket, name, obj), headers)
        return True
      span = _byte_range(self.headers.get("Range"), len(obj.data))
      if span is None:
        self._send(200, obj.data, headers, obj.content_type)
      elif span[0] >= len(obj.data) and len(obj.data) > 0:
        self._send(416, b"", {"Content-Range": f"bytes */{len(obj.data)}"})
      else:
        headers["Content-Range"] = f"bytes {span[0]}-{max(span[1] - 1, span[0])}/{len(obj.data)}"
        self._send(206, obj.data[span[0]:span[1]], headers, obj.content_type)
      return True
    if self.command == "DELETE":
      with self.server.lock:
        obj = self.server.objects.get((bucket, name))
        if obj is None:
          self._error(404, f"No such object: {bucket}/{name}")
          return True
        _check_generation(obj, query)
        del self.server.objects[(bucket, name)]
      self._send(204)
      return True
    return False

  def _store(self, bucket: str, name: str, data: bytes, query: dict[str, str], content_type: str) -> None:
    with self.server.lock:
      _check_generation(self.server.objects.get((bucket, name)), query)
      obj = _Object(data, next(self.server.generation), content_type)
      self.server.objects[(bucket, name)] = obj
    self._json(200, _metadata(bucket, name, obj))

  def _upload(self, bucket: str, query: dict[str, str], body: bytes) -> bool:
    kind = query.get("uploadType", "media")
    content_type = self.headers.get("Content-Type", "application/octet-stream")
    if kind == "media":
      self._store(bucket, query["name"], body, query, content_type)
    elif kind == "multipart":
      meta, data = _multipart(body, content_type)
      self._store(bucket, meta.get("name") or query["name"], data, query,
                  meta.get("contentType", "application/octet-stream"))
    elif kind == "resumable":
      meta = json.loads(body) if body.strip() else {}
      upload_id = str(next(_UPLOAD_ID))
      self.server.uploads[upload_id] = {
          "bucket": bucket, "name": meta.get("name") or query["name"], "data": b"", "query": query,
          "content_type": self.headers.get("X-Upload-Content-Type", "application/octet-stream")}
      location = f"{self.server.url}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={upload_id}"
      self._send(200, b"", {"Location": location})
    else:
      return False
    return True

  def _resume(self, upload_id: str, body: bytes) -> bool:
    upload = self.server.uploads.get(upload_id)
    if upload is None:
      self._error(404, "no such upload")
      return True
    upload["data"] += body
    total = re.search(r"/(\d+|\*)$", self.headers.get("Content-Range", "bytes */*")).group(1)
    if total == "*" or int(total) > len(upload["data"]):
      headers = {"Range": f"bytes=0-{len(upload['data']) - 1}"} if upload["data"] else {}
      self._send(308, b"", headers)
      return True
    del self.server.uploads[upload_id]
    self._store(upload["bucket"], upload["name"], upload["data"], upload["query"], upload["content_type"])
    return True

  def _list(self, bucket: str, query: dict[str, str]) -> None:
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    start, end = query.get("startOffset", ""), query.get("endOffset")
    with self.server.lock:
      objects = sorted((n, o) for (b, n), o in self.server.objects.items()
                       if b == bucket and n.startswith(prefix) and n >= start and (end is None or n < end))
    items, prefixes = [], set()
    for name, obj in objects:
      cut = name.find(delimiter, len(prefix)) if delimiter else -1
      if cut >= 0:
        prefixes.add(name[:cut + len(delimiter)])
      else:
        items.append(_metadata(bucket, name, obj))
    out: dict[str, Any] = {"kind": "storage#objects", "items": items}
    if prefixes:
      out["prefixes"] = sorted(prefixes)
    self._json(200, out)

  def _copy(self, bucket: str, name: str, dst_bucket: str, dst_name: str, verb: str,
            query: dict[str, str]) -> bool:
    with self.server.lock:
      obj = self.server.objects.get((bucket, name))
    if obj is None:
      self._error(404, f"No such object: {bucket}/{name}")
      return True
    if dst_bucket not in self.server.buckets:
      self._error(404, f"bucket {dst_bucket} not found")
      return True
    with self.server.lock:
      _check_generation(self.server.objects.get((dst_bucket, dst_name)), query)
      new = _Object(obj.data, next(self.server.generation), obj.content_type)
      self.server.objects[(dst_bucket, dst_name)] = new
      if verb == "moveTo" and (bucket, name) != (dst_bucket, dst_name):  # atomic: the source disappears as the destination appears
        del self.server.objects[(bucket, name)]
    meta = _metadata(dst_bucket, dst_name, new)
    if verb in ("copyTo", "moveTo"):
      self._json(200, meta)
    else:
      self._json(200, {"kind": "storage#rewriteResponse", "done": True, "resource": meta,
                       "objectSize": meta["size"], "totalBytesRewritten": meta["size"]})
    return True


def main() -> None:
  """Runs the fake until interrupted and prints the variables to export."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--port", type=int, default=4443)
  parser.add_argument("--bucket", action="append", default=None, help="a bucket to create (repeatable)")
  args = parser.parse_args()
  server = FakeGcs(tuple(args.bucket or ["jaxsemic-test"]), args.port)
  for k, v in environment(server.url).items():
    print(f"export {k}={v}", flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass


if __name__ == "__main__":
  main()
