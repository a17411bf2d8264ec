"""Fuzzes `.sedic` decoding (issue 15): deterministic mutations of one file, each parsed and decoded by the library.

A case is decoded as `sedic decode` does before the diffusion model runs: `container.unpack`, the texts and the
masks (`container.decode_semantics`) and the reference image (`encoder.decode_reference`, the reference codec's
`.jsc` decoder). Every case must decode or give a one-line `UserError`; anything else is unexpected. The worker
processes, timeouts, memory watch and the printed table are tools/fuzz_jsc.py's.

  nice -n 10 python tools/fuzz_sedic.py --cases 3000 --workers 2      # tiny random SELIC as the reference codec
  python tools/fuzz_sedic.py --model REFERENCE_MODEL_DIR --cases 500

Exit status 1 on any unexpected outcome, hang or worker death. `mutants` is also what tests/test_fuzz_sedic.py
runs in-process.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Iterator

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_jsc  # noqa: E402  (the shared mutations, workers and report)
from fuzz_jsc import _INTERESTING, _append, _bit_flips, _crc, _truncate, build_model  # noqa: E402,F401

_BYTE_FIELDS = ("version", "flags", "text_model", "l_d", "l_all", "n_ref")


def _layout(data: bytes) -> dict:
  """Offsets and values of a well-formed .sedic file's header fields, stream lengths and payload."""
  from jaxsemic.sedic.container import read_leb128
  body = data[:-4]
  height, off = read_leb128(body, 6, "height")
  width, off = read_leb128(body, off, "width")
  fixed = body[off:off + 12]  # model id 8, text model id, l_d, l_all, n_ref
  off += 12
  lengths = []
  for i in range(fixed[11] + 1 + (1 if body[5] & 0b1000 else 0)):
    n, off = read_leb128(body, off, f"length {i}")
    lengths.append(n)
  return {"head": body[:6], "height": height, "width": width, "fixed": bytearray(fixed), "lengths": lengths,
          "payload": body[off:]}


def _pack(lay: dict) -> bytes:
  """A file from a (possibly inconsistent) layout, CRC recomputed: what a decoder really parses."""
  from jaxsemic.sedic.container import leb128
  body = (bytes(lay["head"]) + leb128(lay["height"]) + leb128(lay["width"]) + bytes(lay["fixed"])
          + b"".join(leb128(n) for n in lay["lengths"]) + bytes(lay["payload"]))
  return _crc(body)


def _header_field(rng, data: bytes) -> bytes:
  """One header field (version, flags, size, a model-id byte, text model, word limits, n_ref) set; CRC recomputed."""
  lay = _layout(data)
  name = str(rng.choice(list(_BYTE_FIELDS) + ["height", "width", "model_id"]))
  if name in ("height", "width"):
    lay[name] = int(rng.choice([v for v in _INTERESTING if v < 1 << 35] + [lay[name] - 1, lay[name] + 1]))
  elif name == "model_id":
    lay["fixed"][int(rng.integers(8))] ^= 1 << int(rng.integers(8))
  else:
    value = int(rng.choice([0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 127, 128, 255, int(rng.integers(256))]))
    if name in ("version", "flags"):
      head = bytearray(lay["head"])
      head[4 if name == "version" else 5] = value
      lay["head"] = head
    else:
      lay["fixed"][8 + _BYTE_FIELDS.index(name) - 2] = value
  return _pack(lay)


def _stream_lengths(rng, data: bytes) -> bytes:
  """Stream lengths swapped, moved between neighbours, or set to an interesting value; CRC recomputed."""
  lay = _layout(data)
  lengths, r = lay["lengths"], rng.random()
  if r < 0.3:
    i, j = rng.choice(len(lengths), 2, replace=False)
    lengths[i], lengths[j] = lengths[j], lengths[i]
  elif r < 0.7:
    i = int(rng.integers(len(lengths) - 1))
    k = int(rng.integers(-5, 6))
    lengths[i], lengths[i + 1] = max(lengths[i] + k, 0), max(lengths[i + 1] - k, 0)
  else:
    lengths[int(rng.integers(len(lengths)))] = int(rng.choice([v for v in _INTERESTING if v < 1 << 35]))
  return _pack(lay)


def _payload_crc(rng, data: bytes) -> bytes:
  """Bit or byte changes inside one stream (reference, text or masks), CRC recomputed."""
  lay = _layout(data)
  lengths = lay["lengths"]
  k = int(rng.integers(len(lengths)))
  start, payload = sum(lengths[:k]), bytearray(lay["payload"])
  for _ in range(int(rng.integers(1, 4))):
    if lengths[k]:
      i = start + int(rng.integers(lengths[k]))
      payload[i] = int(rng.integers(256)) if rng.random() < 0.5 else payload[i] ^ (1 << int(rng.integers(8)))
  lay["payload"] = payload
  return _pack(lay)


MUTATIONS: dict[str, Callable] = {"bit_flips": _bit_flips, "payload_crc": _payload_crc, "truncate": _truncate,
                                   "append": _append, "header_field": _header_field,
                                   "stream_lengths": _stream_lengths}


def mutants(data: bytes, count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
  """`count` (class, mutated file) pairs, the classes in turn; the same for the same arguments."""
  return fuzz_jsc.mutants(data, count, seed, MUTATIONS)


def base_file(model, image_path: str | None = None) -> bytes:
  """The .sedic of --image (else fuzz_jsc's 40x100 image) with three described objects and their masks."""
  from jaxsemic.codec import image_io
  from jaxsemic.sedic import encoder
  from jaxsemic.sedic.descriptions import Descriptions, ObjectText
  img = image_io.read_image(image_path) if image_path else fuzz_jsc.base_image()
  h, w = img.shape[:2]
  yy, xx = np.mgrid[0:h, 0:w]
  masks = [xx < w // 3, (yy > h // 2) & (xx >= w // 3), (yy - h // 2) ** 2 + (xx - w // 2) ** 2 < (h // 4) ** 2]
  desc = Descriptions("a gradient with noise, a red band on the left and a blue disc", (
      ObjectText("band", "a red vertical band"), ObjectText("floor", "noisy green floor"),
      ObjectText("disc", "a small blue disc in the middle")))
  return encoder.encode(img, desc, masks, model)[0]


def outcome(model, data: bytes) -> str:
  """'image', 'user_error', or 'unexpected <type>: <message>' for one parse and decode (no diffusion)."""
  from jaxsemic.errors import UserError
  from jaxsemic.sedic import container, encoder
  try:
    f = container.unpack(data)
    desc, masks = container.decode_semantics(f)
    img = encoder.decode_reference(data, model)
  except UserError as e:
    return "user_error" if "\n" not in str(e) else f"unexpected multi-line UserError: {str(e)[:80]!r}"
  except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
    return f"unexpected {type(e).__name__}: {str(e)[:100]}"
  if img.dtype != np.uint8 or img.shape != (f.height, f.width, 3):
    return f"unexpected image {img.dtype} {img.shape}"
  if masks is not None and (masks.dtype != bool or masks.shape[0] != f.j):
    return f"unexpected masks {masks.dtype} {masks.shape}"
  if not all(isinstance(t, str) for t in [desc.overall] + [o.details for o in desc.objects]):
    return "unexpected texts"
  return "image"


def main(argv=None) -> int:
  args = fuzz_jsc.arguments(__doc__, argv)
  data = base_file(build_model(args.model), args.image)
  return fuzz_jsc.run_cases(list(mutants(data, args.cases, args.seed)), args, "fuzz_sedic", len(data))


if __name__ == "__main__":
  sys.exit(main())
