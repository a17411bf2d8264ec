"""`jaxsemic sedic encode | info | decode` end to end on a tiny random cheng2020-attn reference codec.

The image is 128x192 with two objects, so the --tiny-random decode has the 16x24 latent of
tests/test_sedic_pipeline.py and reuses its compiled steps when both run in one session.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from jaxsemic import cli
from jaxsemic.codec import api
from jaxsemic.codec.model_io import init_params, load_model, save_model
from jaxsemic.registry import config_from_any
from jaxsemic.sedic import container
from jaxsemic.zoo.config import zoo_model_config

H, W = 128, 192
DESC = {"file": "photo.png", "caption": "a red door and a cat",
        "overall": "A red door in a white wall, a grey cat sits on the step in front of it. Café sign above.",
        "objects": [{"name": "red door", "details": "tall red plank door with a brass knob and a diagonal brace"},
                    {"name": "cat", "details": "grey cat sitting on the stone step, looking left"},
                    {"name": "sign", "details": "small wooden café sign"}]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  """A tiny random reference model directory, an image, three masks of other sizes, a descriptions jsonl."""
  root = tmp_path_factory.mktemp("sedic")
  cfg = config_from_any(zoo_model_config("cheng2020-attn", 16, 16))
  save_model(str(root / "ref"), init_params(cfg, 0), cfg)
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[:H, :W]
  image = np.stack([(xx + yy) % 256, (2 * xx) % 256, rng.integers(0, 256, (H, W))], -1).astype(np.uint8)
  (root / "data").mkdir()
  Image.fromarray(image).save(root / "data" / "photo.png")
  masks = []
  for i, (h, w) in enumerate([(64, 96), (128, 192), (33, 50)]):
    m = np.zeros((h, w), np.uint8)
    m[h * i // 4:h * (i + 2) // 4, w // 5:w * 3 // 5] = 255
    Image.fromarray(m).save(root / f"mask{i}.png")
    masks.append(str(root / f"mask{i}.png"))
  other = {**DESC, "file": "other.png", "overall": "something else"}
  (root / "desc.jsonl").write_text(json.dumps(other) + "\n" + json.dumps(DESC, ensure_ascii=False) + "\n",
                                   encoding="utf-8")
  return {"root": root, "ref": str(root / "ref"), "image": str(root / "data" / "photo.png"), "masks": masks,
          "desc": str(root / "desc.jsonl"), "pixels": image}


def _run(capsys, *argv) -> tuple[int, str, str]:
  code = cli.main(["sedic", *map(str, argv)])
  out, err = capsys.readouterr()
  return code, out, err


def _encode(files, capsys, out, *extra):
  code, stdout, err = _run(capsys, "encode", files["image"], "--descriptions", files["desc"], "--reference",
                           files["ref"], "--out", out, "--json", *extra)
  assert code == 0, err
  return json.loads(stdout)


@pytest.fixture(scope="module")
def encoded(files):
  """photo.sedic at J = 2, l_d = 6, l_all = 12."""
  out = files["root"] / "photo.sedic"
  assert cli.main(["sedic", "encode", files["image"], "--descriptions", files["desc"], "--reference", files["ref"],
                   "--masks", *files["masks"][:2], "--objects", "2", "--l-d", "6", "--l-all", "12",
                   "--out", str(out)]) == 0
  return out


def test_encode_records_rate_control_and_bits_add_up(files, encoded, capsys, tmp_path):
  again = tmp_path / "again.sedic"
  info = _encode(files, capsys, again, "--masks", *files["masks"], "--objects", 2, "--l-d", 6, "--l-all", 12)
  data = encoded.read_bytes()
  assert again.read_bytes() == data  # deterministic; a third mask file is ignored at J = 2
  assert info["bytes"] == len(data) and info["file"] == "photo.png" and info["J"] == 2
  assert info["notes"] == ["3 masks for 2 objects kept: the first 2 are used"]
  bits = info["bits"]
  assert bits["total"] == 8 * len(data) == bits["reference"] + bits["text"] + bits["masks"] + bits["header"]
  assert bits["masks"] > 0 and bits["text"] > 0 and bits["reference"] > 0
  assert info["bpp"]["total"] == pytest.approx(8 * len(data) / (H * W))
  code, out, err = _run(capsys, "info", encoded, "--json")
  assert code == 0, err
  s = json.loads(out)
  assert (s["J"], s["l_d"], s["l_all"], s["names_sent"]) == (2, 6, 12, True)
  assert s["bits"] == bits and s["mask_grid"] == [H // 8, W // 8]
  assert s["overall"] == "A red door in a white wall, a grey cat sits on"
  assert [o["name"] for o in s["objects"]] == ["red door", "cat"]
  assert s["objects"][0]["details"] == "tall red plank door with a"
  assert 0 < s["mask_coverage"][0] < 1
  code, out, _ = _run(capsys, "info", encoded)
  assert code == 0 and "J = 2" in out and "object 2: cat:" in out


def test_reference_only_equals_the_codec_round_trip(files, encoded, capsys):
  out = files["root"] / "ref.png"
  code, stdout, err = _run(capsys, "decode", encoded, "--reference-only", "--reference", files["ref"], "--out", out,
                           "--json")
  assert code == 0, err
  assert json.loads(stdout)["mode"] == "reference-only"
  model = load_model(files["ref"])
  expected = api.decompress(model, api.compress(model, files["pixels"])[0])
  np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)


def test_a_version_2_file_decodes_its_reference_with_version_2s_program(files, encoded, capsys, tmp_path,
                                                                        monkeypatch):
  """A .sedic version 2 carries .jsc version 2 reference streams (entropy parameters as 1x1 convs): decoded with
  that arithmetic, bit for bit the .jsc version 2 round trip, and within float rounding of version 3's image."""
  import dataclasses
  from jaxsemic.codec import bitstream
  from jaxsemic.zoo import codec as zoo_codec
  decode, forms = zoo_codec.context_decode, []
  monkeypatch.setattr(zoo_codec, "context_decode", lambda *a, entropy_rows=True: (
      forms.append(entropy_rows), decode(*a, entropy_rows=entropy_rows))[1])
  model = load_model(files["ref"])
  x = api.pad_images(files["pixels"][None]).astype(np.float32) / 255.0
  streams, _ = zoo_codec.context_streams(model, x, "wavefront", entropy_rows=False)
  old = dataclasses.replace(container.unpack(encoded.read_bytes()), ref_streams=tuple(streams), version=2)
  (tmp_path / "v2.sedic").write_bytes(container.pack(old))
  out = tmp_path / "ref.png"
  code, _, err = _run(capsys, "decode", tmp_path / "v2.sedic", "--reference-only", "--reference", files["ref"],
                      "--out", out)
  assert code == 0, err
  assert forms == [False]  # the reference decoded with version 2's entropy parameters
  jsc_v2 = bitstream.pack(bitstream.Bitstream(model.model_id, H, W, tuple(streams), version=2))
  np.testing.assert_array_equal(np.asarray(Image.open(out)), api.decompress(model, jsc_v2))
  v3 = api.decompress(model, api.compress(model, files["pixels"])[0])
  assert np.abs(np.asarray(Image.open(out)).astype(int) - v3).max() <= 1


def test_eval_scores_reconstructions_with_the_bits_of_encode_json(files, encoded, capsys, tmp_path):
  info = _encode(files, capsys, tmp_path / "again.sedic", "--masks", *files["masks"][:2], "--objects", 2,
                 "--l-d", 6, "--l-all", 12)
  (tmp_path / "bits.jsonl").write_text(json.dumps(info) + "\n")
  recon = tmp_path / "recon"
  recon.mkdir()
  assert _run(capsys, "decode", encoded, "--reference-only", "--reference", files["ref"],
              "--out", recon / "photo.png")[0] == 0
  code = cli.main(["eval", "--reconstructions", str(recon), "--data", str(files["root"] / "data"), "--bits",
                   str(tmp_path / "bits.jsonl"), "--out", str(tmp_path / "r.json"), "--quiet"])
  _, err = capsys.readouterr()
  assert code == 0, err
  r = json.loads((tmp_path / "r.json").read_text())["results"]
  assert r["bpp"] == [pytest.approx(info["bpp"]["total"])]
  assert r["bpp-masks"] == [pytest.approx(info["bpp"]["masks"])]
  model = load_model(files["ref"])
  expected = api.decompress(model, api.compress(model, files["pixels"])[0])
  mse = np.mean((expected.astype(np.float64) - files["pixels"]) ** 2)
  assert r["psnr-rgb"] == [pytest.approx(10 * np.log10(255.0 ** 2 / mse), abs=1e-4)]
  (recon / "photo.png").rename(recon / "other.png")
  code = cli.main(["eval", "--reconstructions", str(recon), "--data", str(files["root"] / "data")])
  assert code == 1 and "no reconstruction of photo.png" in capsys.readouterr().err


def test_tiny_random_decode_runs_every_stage(files, encoded, capsys):
  out = files["root"] / "tiny.png"
  code, stdout, err = _run(capsys, "decode", encoded, "--tiny-random", "--reference", files["ref"], "--out", out,
                           "--object-steps", 2, "--overall-steps", 2, "--seed", 5, "--json")
  assert code == 0, err
  info = json.loads(stdout)
  assert {"reference", "prepare", "object_1", "object_2", "overall", "total"} <= set(info["seconds"])
  image = np.asarray(Image.open(out))
  assert image.shape == (H, W, 3) and image.dtype == np.uint8


def test_zero_objects_need_no_masks(files, capsys, tmp_path):
  info = _encode(files, capsys, tmp_path / "j0.sedic", "--objects", 0)
  assert info["J"] == 0 and info["bits"]["masks"] == 0
  f = container.unpack((tmp_path / "j0.sedic").read_bytes())
  assert f.mask_stream is None and f.n_texts == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "jsc"])
def test_corrupt_files_are_one_line_errors_without_output(files, encoded, capsys, tmp_path, damage):
  data = bytearray(encoded.read_bytes())
  if damage == "flip":
    data[len(data) // 2] ^= 0x10
  elif damage == "truncate":
    data = data[:len(data) - 7]
  elif damage == "empty":
    data = b""
  else:
    data = b"JSC\x1a" + bytes(data[4:])
  bad = tmp_path / "bad.sedic"
  bad.write_bytes(bytes(data))
  for argv in (["info", bad], ["decode", bad, "--reference-only", "--reference", files["ref"], "--out",
                                tmp_path / "o.png"],
               ["decode", bad, "--tiny-random", "--reference", files["ref"], "--out", tmp_path / "o.png"]):
    code, out, err = _run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "error: " in err and ".sedic" in err, err
    assert not (tmp_path / "o.png").exists()


def test_missing_inputs_are_one_line_errors(files, capsys, tmp_path):
  out = tmp_path / "x.sedic"
  base = ["encode", files["image"], "--reference", files["ref"], "--out", out]
  cases = [
      (base + ["--descriptions", tmp_path / "none.jsonl", "--masks", *files["masks"]], "does not exist"),
      (base + ["--descriptions", files["desc"], "--masks", files["masks"][0]], "3 objects kept (--objects 3) but 1 mask files"),
      (base + ["--descriptions", files["desc"]], "3 objects kept (--objects 3) but 0 mask files"),
      (base + ["--descriptions", files["desc"], "--masks", files["masks"][0], tmp_path / "no.png"],
       "does not exist"),
      (["encode", tmp_path / "no.png", "--descriptions", files["desc"], "--reference", files["ref"], "--out", out],
       "input not found"),
      (base + ["--descriptions", files["desc"], "--objects", 4], "J must be an integer in 0..3"),
  ]
  for argv, message in cases:
    code, stdout, err = _run(capsys, *argv)
    assert code == 1 and stdout == "" and err.count("\n") == 1 and message in err, err
    assert not out.exists()
  code, _, err = _run(capsys, "decode", tmp_path / "none.sedic", "--reference-only", "--out", tmp_path / "o.png")
  assert code == 1 and "input not found" in err


def test_outputs_are_not_overwritten_without_force(files, encoded, capsys):
  before = encoded.read_bytes()
  code, _, err = _run(capsys, "encode", files["image"], "--descriptions", files["desc"], "--reference",
                      files["ref"], "--objects", 0, "--out", encoded)
  assert code == 1 and "--force" in err and encoded.read_bytes() == before
  code, _, err = _run(capsys, "decode", encoded, "--reference-only", "--reference", files["ref"],
                      "--out", files["image"])
  assert code == 1 and "--force" in err


def test_a_file_from_another_reference_model_is_refused(files, encoded, capsys, tmp_path):
  import jax
  from jaxsemic.codec import model_io
  other = tmp_path / "other"
  ref = model_io.load_model(str(files["ref"]))  # another valid model: one weight changed, id recomputed
  params = jax.tree.map(lambda a: a, ref.params)
  leaf_path, leaf = jax.tree_util.tree_leaves_with_path(params)[0]
  params = jax.tree_util.tree_map_with_path(lambda p, a: a + 1e-3 if p == leaf_path else a, params)
  other_id = model_io.save_model(str(other), params, ref.cfg)
  assert other_id != ref.model_id
  code, _, err = _run(capsys, "decode", encoded, "--reference-only", "--reference", other, "--out", tmp_path / "o.png")
  assert code == 1 and "made with reference model" in err and f"not with the given {other_id.hex()}" in err
  assert not (tmp_path / "o.png").exists()


def test_bits_files_of_the_benchmark_and_of_encode_json(tmp_path):
  from jaxsemic.errors import UserError
  from jaxsemic.eval.reconstructions import load_bits
  row = {"file": "kodim01.png", "height": 512, "width": 768,
         "bits": {"reference": 7000, "text": 1500, "masks": 800, "header": 272, "total": 9572}}
  (tmp_path / "table8.json").write_text(json.dumps({"name": "sedic", "images": [row, {**row, "file": "b.png"}]}))
  (tmp_path / "encode.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, "file": "dir/b.png"}) + "\n")
  for name in ("table8.json", "encode.jsonl"):
    bits = load_bits(str(tmp_path / name))
    assert set(bits) == {"kodim01", "b"}
    assert bits["kodim01"]["total"] == pytest.approx(9572 / (512 * 768))
  (tmp_path / "bad.json").write_text(json.dumps({"images": [{"file": "a.png", "bits": {"text": 1}}]}))
  with pytest.raises(UserError, match="needs \"file\", \"height\", \"width\""):
    load_bits(str(tmp_path / "bad.json"))
  (tmp_path / "bad.jsonl").write_text("{}\n{")
  with pytest.raises(UserError, match="neither JSON nor JSON lines"):
    load_bits(str(tmp_path / "bad.jsonl"))
