"""`jaxsemic embed-text` and the text-vector cache format."""

import json
import os

import numpy as np
import pytest

from jaxsemic import cli
from jaxsemic.errors import UserError
from jaxsemic.text import cache, embed


def _write_jsonl(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_embed_text_writes_cache(tmp_path, capsys):
  _write_jsonl(tmp_path / "a.jsonl", [
      {"file": "val/1.jpg", "captions": ["A woman stands at the table.", "A room with chairs."]},
      {"file": "val/2.jpg", "captions": []},
  ])
  _write_jsonl(tmp_path / "kodak.jsonl", [{"file": "kodim01.png", "caption": "a stone building", "x": 1}])
  out = tmp_path / "cache" / "text.safetensors"
  argv = ["embed-text", str(tmp_path / "a.jsonl"), str(tmp_path / "kodak.jsonl"), "--out", str(out)]
  assert cli.main(argv) == 0
  vectors = cache.load_text_cache(out)
  umask = os.umask(0)
  os.umask(umask)
  assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
  assert sorted(vectors) == ["kodim01.png", "val/1.jpg", "val/2.jpg"]
  assert vectors["val/2.jpg"].shape == (0, 384)
  encoder = embed.load_text_encoder()
  want = encoder.embed(["A woman stands at the table.", "A room with chairs.", "a stone building", ""])
  np.testing.assert_allclose(vectors["val/1.jpg"], want[:2], atol=1e-6)
  np.testing.assert_allclose(vectors["kodim01.png"], want[2:3], atol=1e-6)
  info = cache.load_text_cache_info(out)
  assert info["dim"] == 384 and info["files"] == 3 and info["encoder"] == embed.DEFAULT_NAME
  np.testing.assert_allclose(info["empty"], want[3], atol=1e-6)

  # An existing output is kept without --force; bad input is one line, exit 1, and writes nothing.
  assert cli.main(argv) == 1
  assert "--force" in capsys.readouterr().err
  (tmp_path / "bad.jsonl").write_text('{"file": "x.jpg", "captions": ["ok"]}\n{not json\n')
  bad_out = tmp_path / "bad.safetensors"
  assert cli.main(["embed-text", str(tmp_path / "bad.jsonl"), "--out", str(bad_out)]) == 1
  assert "bad.jsonl:2" in capsys.readouterr().err and not bad_out.exists()
  assert list((tmp_path / "cache").iterdir()) == [out]  # no temp files left behind
  # --json (one object on stdout) and --text-encoder, the compress command's name for --encoder.
  assert cli.main(argv + ["--force", "--json", "--text-encoder", str(embed.default_model_dir())]) == 0
  assert json.loads(capsys.readouterr().out) == {"out": str(out), "images": 3, "captions": 3, "dim": 384,
                                                 "encoder": cache.load_text_cache_info(out)["encoder"]}


def test_cache_rejects_other_files(tmp_path):
  (tmp_path / "x.safetensors").write_bytes(b"not a cache")
  with pytest.raises(UserError, match="not a text cache"):
    cache.load_text_cache(tmp_path / "x.safetensors")
  with pytest.raises(UserError, match="does not exist"):
    cache.load_text_cache(tmp_path / "missing.safetensors")
  cache.save_text_cache(tmp_path / "c.safetensors", {"a": np.ones((2, 3))}, encoder="e", empty=np.zeros(3))
  np.testing.assert_array_equal(cache.load_text_cache(tmp_path / "c.safetensors")["a"], np.ones((2, 3)))
