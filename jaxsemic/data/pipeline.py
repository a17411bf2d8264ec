"""The grain training pipeline: files -> shuffled, per-process sharded, checkpointable batches."""

from __future__ import annotations

import dataclasses
import logging

import grain
import ml_collections

from jaxsemic.data import builtin, files, text_vectors
from jaxsemic.data.transforms import DecodeCropFlip
from jaxsemic.errors import UserError


@dataclasses.dataclass(frozen=True)
class TrainSet:
  """The images a run trains on, with their caption vectors (None when the run uses no text)."""

  paths: list[str]
  keys: list[str]
  text_rows: list | None
  empty_text: object
  num_small_skipped: int = 0


def find_train_set(data: ml_collections.ConfigDict, text_dim: int | None) -> TrainSet:
  """Lists the training images (or the built-in photos) and attaches text vectors if configured."""
  if data.train_dir:
    root = data.train_dir
    paths = files.list_images(root)
  else:
    root, paths = builtin.photo_dir(), builtin.photo_paths()
  num_small = 0
  if data.small_images == "skip":
    kept = [p for p in paths if _big_enough(p, data.crop_size)]
    num_small = len(paths) - len(kept)
    if not kept:
      raise UserError(f"all {len(paths)} images are smaller than the {data.crop_size}px crop")
    paths = kept
  elif data.small_images != "upscale":
    raise UserError(f"config.data.small_images must be 'upscale' or 'skip', got {data.small_images!r}")
  keys = [files.relative_key(p, root) for p in paths]
  text_rows, empty = None, None
  if text_dim is not None:
    cache = data.text_cache or (builtin.text_cache_path() if not data.train_dir else "")
    if not cache:
      raise UserError("this model uses text but config.data.text_cache is not set "
                      "(fill one with `jaxsemic embed-text`, or train configs/baseline.py)")
    table = text_vectors.load_vectors(cache)
    text_rows, empty = text_vectors.vectors_for_files(table, keys, text_dim)
    missing = sum(r is None for r in text_rows)
    if missing:
      logging.warning("%d of %d images have no text vector; they train with the empty caption",
                      missing, len(keys))
  return TrainSet(paths, keys, text_rows, empty, num_small)


def _big_enough(path: str, crop: int) -> bool:
  """True if the image's header says both sides are >= crop (unreadable headers are kept: skipped later)."""
  size = files.image_size(path)
  return size is None or min(size) >= crop


def make_train_loader(config: ml_collections.ConfigDict, train_set: TrainSet, *,
                      process_index: int, process_count: int) -> grain.DataLoader:
  """An endless loader of this process's share of each global batch, shuffled from config.seed."""
  data = config.data
  if config.batch_size % process_count:
    raise UserError(f"batch_size {config.batch_size} is not divisible by {process_count} processes")
  shard = grain.sharding.ShardOptions(process_index, process_count, drop_remainder=True)
  sampler = grain.samplers.IndexSampler(
      num_records=len(train_set.paths), shard_options=shard, shuffle=True,
      num_epochs=None, seed=config.seed)
  transform = DecodeCropFlip(
      paths=train_set.paths, crop=data.crop_size, upscale_small=data.small_images == "upscale",
      flip=data.flip, text_rows=train_set.text_rows, empty_text=train_set.empty_text,
      caption_dropout=data.caption_dropout)
  return grain.DataLoader(
      data_source=IndexSource(len(train_set.paths)), sampler=sampler,
      operations=[transform, grain.transforms.Batch(config.batch_size // process_count,
                                                    drop_remainder=True)],
      worker_count=data.worker_count, worker_buffer_size=data.worker_buffer_size)


class IndexSource:
  """A random-access source whose records are their own indices (the work is in the transform)."""

  def __init__(self, n: int):
    self._n = n

  def __len__(self) -> int:
    return self._n

  def __getitem__(self, index: int) -> int:
    return int(index)

  def __repr__(self) -> str:
    return f"IndexSource({self._n})"
