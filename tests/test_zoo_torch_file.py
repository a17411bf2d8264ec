"""The torch-free reader of `torch.save` files: files written by torch, both layouts, and refused pickles."""

import collections
import io
import os
import pickle
import sys
import zipfile

import ml_dtypes
import numpy as np
import pytest

from jaxsemic.errors import UserError
from jaxsemic.zoo import torch_file
from jaxsemic.zoo.compressai_import import load_state_dict_file, normalise_keys

torch = pytest.importorskip("torch")
LAYOUTS = {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}


def tensors() -> dict[str, torch.Tensor]:
  """Every dtype a checkpoint holds, and views: transposed, strided, offset, sharing one storage."""
  g = torch.Generator().manual_seed(0)
  base = torch.randn(4, 6, generator=g)
  return collections.OrderedDict(
      f32=base, transposed=base.t(), strided=base[1:, ::2], row=base[2], column=base[:, 5],
      f16=torch.randn(3, 5, generator=g).half(), bf16=torch.nn.Parameter(torch.randn(2, 3, generator=g).bfloat16()),
      f64=torch.randn(3, generator=g).double(), i64=torch.arange(-3, 7), i32=torch.arange(4, dtype=torch.int32),
      u8=torch.arange(250, 256, dtype=torch.uint8), flag=torch.tensor([True, False]), scalar=torch.tensor(3.5),
      empty=torch.zeros(0, 3), u16=torch.arange(3, dtype=torch.int32).to(torch.uint16),
      param=torch.nn.Parameter(torch.randn(2, 2, 1, 1, generator=g)))


def as_numpy(t: torch.Tensor) -> np.ndarray:
  t = t.detach()
  return t.float().numpy().astype(ml_dtypes.bfloat16) if t.dtype == torch.bfloat16 else t.numpy()


def assert_same(got: np.ndarray, ref: torch.Tensor) -> None:
  want = as_numpy(ref)
  assert isinstance(got, np.ndarray) and got.dtype == want.dtype and got.shape == want.shape
  assert got.tobytes() == np.ascontiguousarray(want).tobytes()  # bit for bit


@pytest.mark.parametrize("layout", LAYOUTS)
def test_state_dict_equals_torch(tmp_path, layout):
  sd = tensors()
  path = tmp_path / "sd.pth.tar"
  torch.save(sd, path, **LAYOUTS[layout])
  got = torch_file.load(str(path))
  assert isinstance(got, collections.OrderedDict) and list(got) == list(sd)
  for k, v in sd.items():
    assert_same(got[k], v)
  assert got["transposed"].flags.c_contiguous  # views come back as independent contiguous arrays


@pytest.mark.parametrize("layout", LAYOUTS)
def test_training_checkpoint(tmp_path, layout):
  """CompressAI's train.py layout: state dict, epoch, optimizer state (tensors, ints, floats, lists, dicts)."""
  net = torch.nn.Conv2d(3, 4, 3)
  opt = torch.optim.Adam(net.parameters(), lr=1e-4)
  net(torch.ones(1, 3, 5, 5)).sum().backward()
  opt.step()
  ckpt = {"epoch": 7, "state_dict": net.state_dict(), "loss": torch.tensor(0.25), "optimizer": opt.state_dict(),
          "best": float("inf"), "tags": {"a", "b"}, "note": b"\x00\xff", "shape": torch.Size([2, 3]),
          "device": torch.device("cpu")}
  path = tmp_path / "checkpoint.pth.tar"
  torch.save(ckpt, path, **LAYOUTS[layout])
  got = torch_file.load(str(path))
  assert got["epoch"] == 7 and got["best"] == float("inf") and got["tags"] == {"a", "b"}
  assert got["note"] == b"\x00\xff" and got["shape"] == (2, 3) and got["device"] == "cpu"
  assert_same(got["state_dict"]["weight"], net.weight)
  state = opt.state_dict()
  assert got["optimizer"]["param_groups"][0]["lr"] == 1e-4
  assert got["optimizer"]["param_groups"][0]["betas"] == state["param_groups"][0]["betas"]
  assert_same(got["optimizer"]["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
  # import-compressai's reader takes the state dict out of it
  assert set(load_state_dict_file(str(path))) == {"weight", "bias"}


def test_compressai_published_names_are_normalised():
  """`module.`, `_matrices.0` / `_matrix0` and cheng2020's `.downsample.` map to CompressAI's current names."""
  state = {"module.entropy_bottleneck._matrices.0": 1, "entropy_bottleneck._bias3": 2,
           "g_a.0.downsample.weight": 3, "entropy_bottleneck.factors.1": 4}
  assert set(normalise_keys(state)) == {"entropy_bottleneck.matrices.0", "entropy_bottleneck.biases.3",
                                        "g_a.0.skip.weight", "entropy_bottleneck.factors.1"}


class Evil:
  """Runs a shell command when unpickled by an unrestricted unpickler."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_code_in_the_pickle_is_refused_and_not_run(tmp_path, layout):
  marker = tmp_path / "pwned"
  path = tmp_path / "evil.pth.tar"
  torch.save({"state_dict": {"w": torch.ones(2)}, "x": Evil(marker)}, path, **LAYOUTS[layout])
  with pytest.raises(UserError, match=r"refusing to load: the pickle names posix\.system") as e:
    torch_file.load(str(path))
  assert "\n" not in str(e.value) and not marker.exists()
  with pytest.raises(UserError, match="refusing"):
    load_state_dict_file(str(path))
  assert not marker.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("builtins", "getattr"), ("torch", "load"),
                                         ("numpy", "load"), ("torch._utils", "_rebuild_qtensor")])
def test_only_allowed_globals_resolve(module, name):
  """GLOBAL (protocol 2, what torch writes) and STACK_GLOBAL (protocol 4) both go through the allow-list."""
  proto2 = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."
  proto4 = b"\x80\x04" + pickle.dumps(module, 4)[2:-1] + pickle.dumps(name, 4)[2:-1] + b"\x93."
  for data in (proto2, proto4):
    with pytest.raises(UserError, match=rf"{module}\.{name}"):
      torch_file.RestrictedUnpickler(io.BytesIO(data)).load()


def rewrite_records(src, dst, edit):
  """A copy of a zip-format file with each record replaced by `edit(name, data)` (CRCs rewritten by zipfile)."""
  with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
    for info in zin.infolist():
      zout.writestr(info.filename, edit(info.filename.split("/", 1)[1], zin.read(info)))


def rewrite_pickle(src, dst, old: bytes, new: bytes):
  """A copy of a zip-format file with bytes of its data.pkl replaced."""
  def edit(name, data):
    if name == "data.pkl":
      assert data.count(old) == 1
      return data.replace(old, new)
    return data
  rewrite_records(src, dst, edit)


def test_big_endian_archive(tmp_path):
  """A file written on a big-endian machine: `byteorder` says "big" and every storage is byte-swapped."""
  sd = {"f": torch.randn(3, 2), "b": torch.randn(4).bfloat16(), "i": torch.arange(-2, 3), "c": torch.randn(2).cfloat()}
  torch.save(sd, tmp_path / "little.pt")
  units = {"data/0": 4, "data/1": 2, "data/2": 8, "data/3": 4}  # storages in pickling order; complex: per part

  def edit(name, data):
    if name == "byteorder":
      return b"big"
    return np.frombuffer(data, f"<u{units[name]}").astype(f">u{units[name]}").tobytes() if name in units else data
  rewrite_records(tmp_path / "little.pt", tmp_path / "big.pt", edit)
  got = torch_file.load(str(tmp_path / "big.pt"))
  for k, v in sd.items():
    assert_same(got[k], v)


def test_tensor_reaching_outside_its_storage_is_refused(tmp_path):
  torch.save({"w": torch.arange(6.0).reshape(2, 3)}, tmp_path / "ok.pt")
  rewrite_pickle(tmp_path / "ok.pt", tmp_path / "bad.pt", b"K\x03K\x01\x86", b"K\x04K\x01\x86")  # stride (4, 1)
  with pytest.raises(UserError, match="reach index 6 of a storage of 6 elements"):
    torch_file.load(str(tmp_path / "bad.pt"))


def test_unreadable_files_are_one_line_errors(tmp_path):
  torch.save({"w": torch.ones(100)}, tmp_path / "zip.pt")
  torch.save({"w": torch.ones(100)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
  (tmp_path / "text.pt").write_text("hello")
  for name in ("zip.pt", "legacy.pt"):
    data = (tmp_path / name).read_bytes()
    (tmp_path / f"cut-{name}").write_bytes(data[:len(data) - 60])
  for name, pattern in [("missing.pt", "not found"), ("text.pt", "not a file written by torch.save"),
                        ("cut-zip.pt", "truncated or corrupt zip"), ("cut-legacy.pt", "storage '.*' is short")]:
    with pytest.raises(UserError, match=pattern) as e:
      torch_file.load(str(tmp_path / name))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_corrupted_bytes_give_user_errors_only(tmp_path, layout):
  """Seeded random byte changes and cuts: every failure is a one-line UserError, never another exception."""
  torch.save({"a": torch.randn(4, 6), "b": torch.arange(3), "o": {"x": [1, 2.5]}}, tmp_path / "ok.pt",
             **LAYOUTS[layout])
  data = (tmp_path / "ok.pt").read_bytes()
  rng = np.random.default_rng(0)
  failures = 0
  for _ in range(300):
    bad = bytearray(data)
    for pos in rng.integers(len(bad), size=rng.integers(1, 5)):
      bad[pos] = int(rng.integers(256))
    if rng.random() < 0.2:
      bad = bad[:int(rng.integers(len(bad)))]
    (tmp_path / "bad.pt").write_bytes(bytes(bad))
    try:
      torch_file.load(str(tmp_path / "bad.pt"))
    except UserError as e:
      failures += 1
      assert "\n" not in str(e)
  assert failures > 100


def test_reading_needs_no_torch(tmp_path, monkeypatch):
  """With `import torch` made to fail, import-compressai's reader still reads a file torch wrote."""
  torch.save({"state_dict": {"w": torch.ones(2, 3)}, "epoch": 1}, tmp_path / "ckpt.pth.tar")
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(ImportError):
    import torch as _  # noqa: F401 - proves the block works
  np.testing.assert_array_equal(load_state_dict_file(str(tmp_path / "ckpt.pth.tar"))["w"], np.ones((2, 3)))
