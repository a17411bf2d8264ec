"""Reads files written by `torch.save` without PyTorch; tensors come back as NumPy arrays.

Two layouts (as `torch.serialization` writes them):
- zip (torch >= 1.6): `<archive>/data.pkl` is the pickled object, storage `<key>` is the record
  `<archive>/data/<key>`, `<archive>/byteorder` says "little" or "big" (absent: little).
- legacy (`_use_new_zipfile_serialization=False`, and torch < 1.6): five pickles back to back (magic number,
  protocol 1001, sys_info, the object, the list of storage keys), then per key an int64 element count and the
  storage's raw little-endian bytes.

The pickles go through a restricted unpickler: `find_class` resolves only the names torch writes for tensors,
parameters, storages, dtypes and plain containers, each to a local stand-in (never to torch or to the global
the file names); any other global is refused with a UserError before anything it names can run.
"""

from __future__ import annotations

import builtins
import collections
import dataclasses
import io
import math
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO, Callable

import ml_dtypes
import numpy as np

from jaxsemic.errors import UserError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch's legacy typed-storage classes and dtype names -> NumPy dtypes.
_DTYPES: dict[str, Any] = {
    "float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
    "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_,
    "complex64": np.complex64, "complex128": np.complex128,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn, "float8_e5m2": ml_dtypes.float8_e5m2,
}
_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
                  "short": "int16", "cfloat": "complex64", "cdouble": "complex128"}
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
}


@dataclasses.dataclass(frozen=True)
class StorageType:
  """Stand-in for a torch storage class named in the pickle (dtype None: the untyped byte storage)."""

  dtype: np.dtype | None


@dataclasses.dataclass(frozen=True)
class TorchDtype:
  """Stand-in for a `torch.<dtype>` global (the v3 tensor rebuild names the dtype explicitly)."""

  dtype: np.dtype


@dataclasses.dataclass
class Storage:
  """The raw bytes of one storage; `data` is None during the legacy format's first (locating) pass."""

  data: bytes | None
  dtype: np.dtype | None
  big_endian: bool = False

  def elements(self, dtype: np.dtype) -> np.ndarray:
    """The storage as a 1-D native-order array of `dtype`."""
    usable = len(self.data) - len(self.data) % dtype.itemsize
    flat = np.frombuffer(self.data, np.uint8, usable)
    if self.big_endian and dtype.itemsize > 1:
      unit = dtype.itemsize // (2 if dtype.kind == "c" else 1)
      flat = flat.view(f">u{unit}").astype(f"<u{unit}").view(np.uint8)
    return flat.view(dtype)


def _strided_copy(flat: np.ndarray, offset: int, size: tuple, stride: tuple) -> np.ndarray:
  """A contiguous copy of the view (offset, size, stride) into `flat`, refused if it reaches outside it."""
  if len(size) != len(stride) or offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
    raise UserError(f"malformed tensor: size {size}, stride {stride}, offset {offset}")
  if math.prod(size) == 0:
    return np.zeros(size, flat.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if last >= flat.size:
    raise UserError(f"malformed tensor: size {size}, stride {stride}, offset {offset} reach index {last} "
                    f"of a storage of {flat.size} elements")
  view = np.lib.stride_tricks.as_strided(flat[offset:], size, [s * flat.itemsize for s in stride],
                                         writeable=False)
  return np.array(view, order="C")


def _tensor(storage: Storage, offset: int, size: tuple, stride: tuple, dtype: np.dtype | None) -> np.ndarray | None:
  if not isinstance(storage, Storage):
    raise UserError(f"malformed tensor: its storage is a {type(storage).__name__}")
  if storage.data is None:  # legacy format, first pass: the bytes come after this pickle
    return None
  dtype = storage.dtype if dtype is None else dtype
  if dtype is None:
    raise UserError("malformed tensor: an untyped storage without a dtype")
  return _strided_copy(storage.elements(np.dtype(dtype)), int(offset), tuple(size), tuple(stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
  del requires_grad, backward_hooks, metadata
  return _tensor(storage, storage_offset, size, stride, None)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
  del requires_grad, backward_hooks, metadata
  if not isinstance(dtype, TorchDtype):
    raise UserError(f"malformed tensor: dtype {dtype!r}")
  return _tensor(storage, storage_offset, size, stride, dtype.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
  del requires_grad, backward_hooks, state
  return data


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
  """Protocol 2 pickles `bytes` as `_codecs.encode(text, "latin1")`; no other codec is allowed."""
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise UserError(f"refusing _codecs.encode with {encoding!r}")
  return text.encode("latin1")


def _device(kind: str, index: int | None = None) -> str:
  return str(kind) if index is None else f"{kind}:{int(index)}"


def _allowed() -> dict[tuple[str, str], Any]:
  """(module, name) -> the stand-in the unpickler hands back."""
  table: dict[tuple[str, str], Any] = {
      ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
      ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
      ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
      ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
      ("collections", "OrderedDict"): collections.OrderedDict,
      ("torch", "Size"): lambda dims=(): tuple(int(d) for d in dims),
      ("torch", "device"): _device,
      ("torch.storage", "UntypedStorage"): StorageType(None),
      ("torch", "UntypedStorage"): StorageType(None),
      ("_codecs", "encode"): _latin1_bytes,
  }
  for name, dt in _STORAGE_DTYPES.items():
    table[("torch", name)] = StorageType(np.dtype(_DTYPES[dt]))
  for name, dt in list(_DTYPES.items()) + [(a, _DTYPES[d]) for a, d in _DTYPE_ALIASES.items()]:
    table[("torch", name)] = TorchDtype(np.dtype(dt))
  for module in ("builtins", "__builtin__"):  # plain containers pickled by reference under protocol 2
    table.update({(module, n): getattr(builtins, n) for n in ("set", "frozenset", "complex", "bytearray", "slice")})
  return table


ALLOWED = _allowed()


class RestrictedUnpickler(pickle.Unpickler):
  """Resolves only the names in ALLOWED; storages come from `storage_fn(persistent id)`."""

  def __init__(self, file: BinaryIO, storage_fn: Callable[[tuple], Storage] | None = None):
    super().__init__(file)
    self._storage_fn = storage_fn

  def find_class(self, module: str, name: str) -> Any:
    try:
      return ALLOWED[(module, name)]
    except KeyError:
      raise UserError(f"refusing to load: the pickle names {module}.{name}, which is not a tensor, storage or "
                      "plain container (no code from the file was run)") from None

  def persistent_load(self, pid: Any) -> Storage:
    if self._storage_fn is None or not isinstance(pid, tuple) or not pid or pid[0] != "storage":
      raise UserError(f"refusing to load: unexpected persistent id {str(pid)[:60]!r}")
    return self._storage_fn(pid)


def _storage_pid(pid: tuple) -> tuple[StorageType, str]:
  """(storage type, key) of a persistent id ('storage', type, key, location, numel[, view metadata])."""
  if len(pid) not in (5, 6) or not isinstance(pid[1], StorageType) or not isinstance(pid[2], str):
    raise UserError(f"refusing to load: malformed storage id {str(pid)[:80]}")
  return pid[1], pid[2]


def _load_zip(archive: zipfile.ZipFile) -> Any:
  """The object of a zip-format file."""
  pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
  if len(pickles) != 1:
    raise UserError("not a torch.save zip archive (no <archive>/data.pkl)")
  prefix = pickles[0][:-len("data.pkl")]
  names = set(archive.namelist())
  big = prefix + "byteorder" in names and archive.read(prefix + "byteorder").strip() == b"big"
  cache: dict[str, bytes] = {}

  def storage(pid: tuple) -> Storage:
    stype, key = _storage_pid(pid)
    record = f"{prefix}data/{key}"
    if record not in names:
      raise UserError(f"storage {key!r} is missing from the archive")
    if key not in cache:
      cache[key] = archive.read(record)
    return Storage(cache[key], stype.dtype, big)

  return RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storage).load()


def _load_legacy(f: BinaryIO) -> Any:
  """The object of a legacy-format file: a first pass finds the storages, a second rebuilds the tensors."""
  header = RestrictedUnpickler(f)
  if header.load() != LEGACY_MAGIC:
    raise UserError("not a file written by torch.save (neither a zip archive nor the legacy format)")
  protocol, sys_info = header.load(), header.load()
  if protocol != LEGACY_PROTOCOL or not isinstance(sys_info, dict):
    raise UserError(f"unsupported legacy torch file (protocol {protocol!r})")
  big = not sys_info.get("little_endian", True)
  start = f.tell()
  types: dict[str, StorageType] = {}

  def locate(pid: tuple) -> Storage:
    stype, key = _storage_pid(pid)
    types[key] = stype
    return Storage(None, stype.dtype)

  RestrictedUnpickler(f, locate).load()
  keys = RestrictedUnpickler(f).load()
  if not isinstance(keys, list) or set(keys) != set(types):
    raise UserError("malformed legacy torch file: storage keys do not match the tensors")
  raw: dict[str, bytes] = {}
  end = os.fstat(f.fileno()).st_size
  for key in keys:
    numel = struct.unpack(">q" if big else "<q", f.read(8))[0]
    nbytes = numel * (1 if types[key].dtype is None else types[key].dtype.itemsize)
    if numel < 0 or nbytes > end - f.tell():  # checked before reading: a corrupt count must not allocate
      raise UserError(f"truncated legacy torch file: storage {key!r} is short")
    raw[key] = f.read(nbytes)

  def storage(pid: tuple) -> Storage:
    stype, key = _storage_pid(pid)
    data = raw[key]
    if len(pid) == 6 and pid[5] is not None:  # a view: (view key, element offset, element count)
      _, offset, count = pid[5]
      itemsize = 1 if stype.dtype is None else stype.dtype.itemsize
      data = data[offset * itemsize:(offset + count) * itemsize]
    return Storage(data, stype.dtype)

  f.seek(start)
  return RestrictedUnpickler(f, storage).load()


def load(path: str) -> Any:
  """The object `torch.save` wrote to `path`, tensors as NumPy arrays; UserError if it cannot be read safely."""
  if not os.path.isfile(path):
    raise UserError(f"checkpoint not found: {path}")
  with open(path, "rb") as f:
    head = f.read(4)
  try:
    if head.startswith(b"PK"):
      if not zipfile.is_zipfile(path):
        raise UserError("a truncated or corrupt zip archive")
      with zipfile.ZipFile(path) as archive:
        return _load_zip(archive)
    if not head.startswith(b"\x80"):  # the legacy format starts with a pickle's PROTO opcode
      raise UserError("not a file written by torch.save (neither a zip archive nor the legacy format)")
    with open(path, "rb") as f:
      return _load_legacy(f)
  except UserError as e:
    raise UserError(f"{path}: {e}") from None
  except Exception as e:  # noqa: BLE001 - a corrupt or truncated file: one line for the user
    first = str(e).splitlines()[0] if str(e) else ""
    raise UserError(f"cannot read {path} as a torch.save file: {type(e).__name__}: {first}") from None
