"""Console lines (step, steps/s, ETA, loss, bpp, PSNR) and TensorBoard scalars, from process 0 only."""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Mapping

# Console order; other metrics go to TensorBoard only.
_CONSOLE = ("loss", "bpp", "psnr", "grad_norm")


class MetricLogger:
  """Writes training and evaluation metrics; a no-op on processes other than 0."""

  def __init__(self, workdir: str, total_steps: int, *, enabled: bool = True):
    self._total = total_steps
    self._enabled = enabled
    self._writer = None
    self._last = None  # (time, step) of the previous training line.
    if enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
      self._writer = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def train(self, step: int, metrics: Mapping[str, float]) -> None:
    """One console line and one TensorBoard point per metric (prefix train/)."""
    if not self._enabled:
      return
    now = time.monotonic()
    rate = None
    if self._last is not None and step > self._last[1]:
      rate = (step - self._last[1]) / max(now - self._last[0], 1e-9)
    self._last = (now, step)
    parts = [f"step {step}/{self._total}"]
    if rate:
      eta = datetime.timedelta(seconds=round((self._total - step) / rate))
      parts += [f"{rate:.2f} steps/s", f"ETA {eta}"]
      self._scalar("train/steps_per_sec", rate, step)
    parts += [f"{k} {metrics[k]:.4g}" for k in _CONSOLE if k in metrics]
    print("  ".join(parts), flush=True)
    for k, v in metrics.items():
      self._scalar(f"train/{k}", v, step)

  def eval(self, step: int, metrics: Mapping[str, float]) -> None:
    """One console line and TensorBoard points (prefix eval/)."""
    if not self._enabled:
      return
    text = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    print(f"eval @ step {step}: {text}", flush=True)
    for k, v in metrics.items():
      self._scalar(f"eval/{k}", v, step)

  def message(self, text: str) -> None:
    """A free-form line (to stderr) from process 0."""
    if self._enabled:
      print(text, file=sys.stderr, flush=True)

  def _scalar(self, name: str, value: float, step: int) -> None:
    if self._writer is not None:
      self._writer.add_scalar(name, float(value), step)

  def close(self) -> None:
    """Flushes TensorBoard files."""
    if self._writer is not None:
      self._writer.close()
