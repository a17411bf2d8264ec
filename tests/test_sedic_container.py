"""The .sedic container: pack/unpack, CRC, truncation, version, reserved bits, lengths, components."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np
import pytest

from jaxsemic.errors import UserError
from jaxsemic.sedic import container as C
from jaxsemic.sedic import maskcode, textcode
from jaxsemic.sedic.descriptions import Descriptions, ObjectText

DESC = Descriptions("A red bicycle leans against a white wall in bright sun.",
                    (ObjectText("bicycle", "Red city bicycle with a black saddle and a basket."),
                     ObjectText("wall", "White plastered wall with a thin crack.")))


def _file(**changes) -> C.SedicFile:
  f = C.SedicFile(ref_model_id=bytes(range(8)), text_model_id=1, height=512, width=768, j=2, names_sent=True,
                  l_d=30, l_all=50, ref_streams=(b"z" * 40, b"y" * 900), text_stream=b"t" * 200,
                  mask_stream=b"m" * 55)
  return dataclasses.replace(f, **changes)


def _recrc(body: bytes) -> bytes:
  return body + struct.pack("<I", zlib.crc32(body))


def test_leb128():
  for v in (0, 1, 127, 128, 300, 65536, (1 << 35) - 1):
    data = C.leb128(v)
    assert C.read_leb128(data + b"\xff", 0, "x") == (v, len(data))
  assert C.leb128(128) == b"\x80\x01"
  with pytest.raises(UserError, match="shortest form"):
    C.read_leb128(b"\x80\x00", 0, "x")
  with pytest.raises(UserError, match="truncated"):
    C.read_leb128(b"\x80", 0, "x")
  with pytest.raises(UserError, match="too long"):
    C.read_leb128(b"\x80" * 6, 0, "x")


@pytest.mark.parametrize("changes", [{}, {"mask_stream": None}, {"j": 0, "mask_stream": None, "names_sent": False},
                                     {"height": 1, "width": 65536, "ref_streams": (b"",), "text_stream": b""}])
def test_roundtrip_and_lengths_add_up(changes):
  f = _file(**changes)
  data = C.pack(f)
  assert C.unpack(data) == f
  bits = C.component_bits(data)
  assert bits["total"] == 8 * len(data) == bits["reference"] + bits["text"] + bits["masks"] + bits["header"]
  assert bits["reference"] == 8 * sum(len(s) for s in f.ref_streams)


def test_header_size():
  # magic 4, version 1, flags 1, height 2, width 2, model id 8, text id / l_d / l_all / n_ref 4, 4 lengths, CRC 4
  bits = C.component_bits(C.pack(_file()))
  assert bits["header"] == 8 * (4 + 1 + 1 + 2 + 2 + 8 + 4 + (1 + 2 + 2 + 1) + 4) == 256


def test_every_truncation_and_bit_flip_is_a_user_error():
  data = C.pack(_file(ref_streams=(b"z" * 3, b"y" * 5), text_stream=b"t" * 4, mask_stream=b"m" * 2))
  for cut in range(len(data)):
    with pytest.raises(UserError):
      C.unpack(data[:cut])
  for i in range(len(data)):
    for bit in range(8):
      with pytest.raises(UserError):
        C.unpack(data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:])


def test_specific_errors():
  data = C.pack(_file())
  with pytest.raises(UserError, match="bad magic"):
    C.unpack(b"JSC\x1a" + data[4:])
  with pytest.raises(UserError, match="version 4"):
    C.unpack(_recrc(data[:4] + b"\x04" + data[5:-4]))
  for old in (1, 2):  # older versions still read
    assert C.unpack(_recrc(data[:4] + bytes([old]) + data[5:-4])).version == old
  with pytest.raises(UserError, match="CRC-32"):
    C.unpack(data[:-1] + bytes([data[-1] ^ 1]))
  with pytest.raises(UserError, match="reserved flag bits"):
    C.unpack(_recrc(data[:5] + bytes([data[5] | 0x10]) + data[6:-4]))
  with pytest.raises(UserError, match="stream lengths"):
    C.unpack(_recrc(data[:-4] + b"extra"))
  zero_h = data[:6] + b"\x00" + data[8:-4]  # height 512 (2 LEB128 bytes) -> 0
  with pytest.raises(UserError, match="image size"):
    C.unpack(_recrc(zero_h))
  with pytest.raises(UserError, match="cannot carry masks"):
    C.pack(_file(j=0))
  with pytest.raises(UserError, match="J must be"):
    C.pack(_file(j=4))
  with pytest.raises(UserError, match="8 bytes"):
    C.pack(_file(ref_model_id=b"short"))
  with pytest.raises(UserError, match="reference sub-streams"):
    C.pack(_file(ref_streams=()))
  with pytest.raises(UserError, match="reference model"):
    C.check_reference(C.unpack(data), b"\xff" * 8)
  C.check_reference(C.unpack(data), bytes(range(8)))


def test_semantics_roundtrip_through_the_file():
  model = textcode.TextModel.load()
  h, w = maskcode.latent_hw(100, 150)
  masks = np.zeros((2, h, w), bool)
  masks[0, 2:8, 3:9] = True
  masks[1, 5:, :4] = True
  for names in (True, False):
    text, mask = C.encode_semantics(DESC, masks, names, model)
    f = _file(height=100, width=150, names_sent=names, text_stream=text, mask_stream=mask)
    got, got_masks = C.decode_semantics(C.unpack(C.pack(f)))
    assert [o.details for o in got.objects] == [o.details for o in DESC.objects] and got.overall == DESC.overall
    assert [o.name for o in got.objects] == ([o.name for o in DESC.objects] if names else ["", ""])
    assert np.array_equal(got_masks, masks)
  text, mask = C.encode_semantics(DESC, None, True, model)
  assert mask is None and C.decode_semantics(_file(text_stream=text, mask_stream=None))[1] is None
  with pytest.raises(UserError, match="unknown"):
    C.decode_semantics(_file(text_model_id=77, text_stream=text))
  with pytest.raises(UserError, match="masks for"):
    C.encode_semantics(DESC, masks[:1], True, model)
