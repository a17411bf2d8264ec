"""The grain input pipeline: folders, crops, determinism, sharding, corrupt files, resumable state, text."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from jaxsemic.data import builtin, files, pipeline
from jaxsemic.errors import UserError
from test_train_standin import tiny_train_config, write_images


def _loader(config, index=0, count=1):
  train_set = pipeline.find_train_set(config.data, None if config.model.fusion == "none"
                                      else config.model.text_dim)
  return pipeline.make_train_loader(config, train_set, process_index=index, process_count=count)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_missing_and_empty_folders_are_one_line_errors(tmp_path):
  with pytest.raises(UserError, match="not found"):
    files.list_images(str(tmp_path / "nope"))
  (tmp_path / "empty" / "sub").mkdir(parents=True)
  (tmp_path / "empty" / "sub" / "notes.txt").write_text("x")
  with pytest.raises(UserError, match="no PNG or JPEG") as e:
    files.list_images(str(tmp_path / "empty"))
  assert "\n" not in str(e.value)


def test_recursive_listing_and_batch_shapes(tmp_path):
  write_images(str(tmp_path / "a"), count=3)
  write_images(str(tmp_path / "b" / "c"), count=2, seed=1)
  assert len(files.list_images(str(tmp_path))) == 5
  batch = next(iter(_loader(tiny_train_config(str(tmp_path), batch_size=4))))
  assert batch["image"].shape == (4, 64, 64, 3) and batch["image"].dtype == np.uint8
  assert batch["skipped"].tolist() == [0, 0, 0, 0]


def test_same_seed_same_batches_other_seed_differs(tmp_path):
  write_images(str(tmp_path))
  a = _take(iter(_loader(tiny_train_config(str(tmp_path)))), 2)
  b = _take(iter(_loader(tiny_train_config(str(tmp_path)))), 2)
  c = _take(iter(_loader(tiny_train_config(str(tmp_path), seed=1))), 2)
  assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, b))
  assert not all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, c))


def test_iterator_state_resumes_exactly(tmp_path):
  write_images(str(tmp_path))
  config = tiny_train_config(str(tmp_path), batch_size=2)
  it = iter(_loader(config))
  _take(it, 3)
  state = it.get_state()
  expected = _take(it, 2)
  it2 = iter(_loader(config))
  it2.set_state(state)
  got = _take(it2, 2)
  assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(expected, got))


def test_processes_read_disjoint_shards(tmp_path):
  for i in range(8):  # Solid colours: a crop's first pixel tells which file it came from.
    Image.fromarray(np.full((64, 64, 3), 10 * i, np.uint8)).save(tmp_path / f"{i}.png")
  config = tiny_train_config(str(tmp_path), batch_size=4)
  seen = []
  for index in range(2):
    batches = _take(iter(_loader(config, index, 2)), 4)  # 2 examples a step: two passes over 4 files
    seen.append({int(x[0, 0, 0]) for b in batches for x in b["image"]})
  assert len(seen[0]) == len(seen[1]) == 4
  assert not seen[0] & seen[1]


def test_corrupt_files_are_skipped_and_counted(tmp_path):
  write_images(str(tmp_path), count=4)
  for name in ("bad0.png", "bad1.jpg"):
    (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
  config = tiny_train_config(str(tmp_path), batch_size=6)
  batches = _take(iter(_loader(config)), 4)  # 24 examples from 6 files: every file several times
  assert sum(int(b["skipped"].sum()) for b in batches) >= 2
  assert all(b["image"].shape == (6, 64, 64, 3) for b in batches)


def test_small_images_upscaled_or_skipped(tmp_path):
  write_images(str(tmp_path), count=2, size=(80, 96))
  write_images(str(tmp_path / "small"), count=2, size=(40, 48), seed=3)
  config = tiny_train_config(str(tmp_path))
  assert len(pipeline.find_train_set(config.data, None).paths) == 4
  config.data.small_images = "skip"
  kept = pipeline.find_train_set(config.data, None)
  assert len(kept.paths) == 2 and kept.num_small_skipped == 2
  assert next(iter(_loader(config)))["image"].shape == (8, 64, 64, 3)
  config.data.crop_size = 128
  with pytest.raises(UserError, match="smaller than"):
    pipeline.find_train_set(config.data, None)


def test_caption_vectors_from_npz_cache(tmp_path):
  data = tmp_path / "data"
  write_images(str(data / "imgs"), count=3)
  with open(data / "captions.jsonl", "w") as f:
    for i in range(3):
      f.write(json.dumps({"file": f"imgs/img{i}.{'jpg' if i == 0 else 'png'}",
                          "captions": [f"c{i}a", f"c{i}b"]}) + "\n")
  caps = files.load_captions([str(data / "captions.jsonl")], str(data))
  assert caps["imgs/img1.png"] == ["c1a", "c1b"]
  # Keys relative to a sub-folder still match (suffix match); img2 has no vectors.
  vectors = {"imgs/img0.jpg": np.full((2, 8), 1.0), "img1.png": np.stack([np.full(8, 2.0),
                                                                          np.full(8, 3.0)])}
  np.savez(tmp_path / "text.npz", **vectors)
  config = tiny_train_config(str(data), batch_size=6)
  config.model.fusion = "concat"
  config.data.text_cache = str(tmp_path / "text.npz")
  batches = _take(iter(_loader(config)), 4)
  values = {float(v) for b in batches for v in b["text"][:, 0]}
  assert batches[0]["text"].shape == (6, 8)
  assert values == {0.0, 1.0, 2.0, 3.0}  # both captions of img1 sampled; img2 -> empty (zeros)
  config.data.caption_dropout = 1.0
  assert not np.any(next(iter(_loader(config)))["text"])


def test_text_model_without_cache_is_a_clear_error(tmp_path):
  write_images(str(tmp_path))
  config = tiny_train_config(str(tmp_path))
  with pytest.raises(UserError, match="text_cache"):
    pipeline.find_train_set(config.data, 8)


def test_builtin_photos_exist_and_have_captions():
  paths = builtin.photo_paths()
  caps = builtin.captions()
  assert len(paths) >= 10 and all(os.path.exists(p) for p in paths)
  assert {"astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"} <= set(caps)
  assert all(len(c) >= 1 and all(len(s) > 10 for s in c) for c in caps.values())
