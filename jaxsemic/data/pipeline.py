"""The grain training pipeline: files -> shuffled, per-process sharded, checkpointable batches."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
from collections.abc import Iterator
from multiprocessing import resource_tracker
from typing import Any

import grain
import ml_collections
from absl import flags

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
  if data.worker_count and not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # grain's workers read its absl flags: outside an absl app, their defaults
  return grain.DataLoader(
      data_source=IndexSource(len(train_set.paths)), sampler=sampler,
      operations=[transform, grain.transforms.Batch(config.batch_size // process_count,
                                                    drop_remainder=True)],
      worker_count=data.worker_count, worker_buffer_size=data.worker_buffer_size)


def hold_sigterm() -> Any:
  """Blocks SIGTERM in the calling thread; returns the mask to give release_sigterm (see sigterm_held).

  Threads and processes started meanwhile inherit the block, so a SIGTERM sent to the whole process group
  (SLURM, `kill -TERM -- -PGID`) leaves grain's data workers feeding the trainer, which checkpoints the step
  it reached and then stops them itself; otherwise a worker killed while the trainer waits for its batch ends
  the run in grain's "worker process was terminated" error, with no checkpoint. A SIGTERM sent meanwhile is
  not lost: another thread of the process takes it at once, else it waits (sigterm_pending) for the release.
  """
  if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks (and no SIGTERM from schedulers)
    return None
  # Started now, not by grain inside the block: multiprocessing starts its resource tracker (which grain's
  # shared memory needs) with SIGTERM blocked and then unblocks it, whatever the thread's mask was before.
  resource_tracker.ensure_running()
  return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def release_sigterm(previous: Any) -> None:
  """Puts back the mask hold_sigterm returned (a pending SIGTERM is delivered now)."""
  if previous is not None:
    signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def sigterm_pending() -> bool:
  """Whether a SIGTERM waits for a release (it reached no thread that takes it)."""
  return hasattr(signal, "sigpending") and signal.SIGTERM in signal.sigpending()


@contextlib.contextmanager
def sigterm_held() -> Iterator[None]:
  """hold_sigterm for the calls that may start grain's worker threads and processes."""
  previous = hold_sigterm()
  try:
    yield
  finally:
    release_sigterm(previous)


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
