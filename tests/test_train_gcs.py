"""A gs:// workdir end to end against a local fake of the GCS JSON API (tests/fake_gcs.py): the real clients
(tensorstore under orbax, gcsfs under etils.epath, google-cloud-storage under tensorboardX) write the bucket.

Train a tiny SELIC with `python -m jaxsemic.train --workdir=gs://...`, SIGTERM it after its first checkpoint
(exit 143, checkpoint at the step reached), run it again (resumes there), export to a gs:// model directory,
compress to a gs:// .jsc with it and evaluate it with results written to gs://.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from etils import epath
from PIL import Image

import fake_gcs
from jaxsemic import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "jaxsemic-test"
RUN = f"gs://{BUCKET}/runs/tiny"
MODEL = f"gs://{BUCKET}/models/tiny"
TINY = ("--config.model.N=8", "--config.model.M=8", "--config.model.num_slices=2",
        "--config.model.charm_hidden=(8,8)", "--config.model.fusion=none", "--config.data.crop_size=64",
        "--config.batch_size=2", "--config.checkpoint_every=2", "--config.log_every=2",
        "--config.demo.enabled=False")


@pytest.fixture(scope="module")
def gcs():
  """A fake GCS endpoint with one bucket; this process and its children point their clients at it."""
  with fake_gcs.serve((BUCKET,)) as server, pytest.MonkeyPatch.context() as mp:
    for k, v in fake_gcs.environment(server.url).items():
      mp.setenv(k, v)
    yield server


def _train(tmp_path, steps: int) -> subprocess.Popen:
  env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
             PYTHONPATH=ROOT)
  cmd = [sys.executable, "-m", "jaxsemic.train", f"--config={ROOT}/configs/tiny.py", f"--workdir={RUN}",
         *TINY, f"--config.num_train_steps={steps}"]
  # cwd: a gs:// path mistaken for a local one would show up there as a folder 'gs:'
  return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _checkpoints(server: fake_gcs.FakeGcs) -> list[int]:
  """Steps of the finished checkpoints in the bucket (orbax's commit marker written)."""
  names = server.names(BUCKET, "runs/tiny/checkpoints/")
  return sorted(int(m.group(1)) for n in names if (m := re.fullmatch(r".*/(\d+)/commit_success\.txt", n)))


@pytest.mark.slow  # two training processes and a compress/eval compile: about a minute
def test_bucket_workdir_trains_is_preempted_resumes_exports_and_compresses(gcs, tmp_path):
  proc = _train(tmp_path, steps=1000)
  deadline = time.monotonic() + 300
  while not _checkpoints(gcs) and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.1)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 143, out[-3000:]
  at = int(re.search(r"preempted: checkpoint saved at step (\d+)", out).group(1))
  assert _checkpoints(gcs)[-1] == at and 0 < at < 1000
  assert gcs.names(BUCKET, "runs/tiny/config.json") and gcs.names(BUCKET, "runs/tiny/tensorboard/events.")

  proc = _train(tmp_path, steps=at + 2)  # the same command resumes (here: with 2 more steps to go)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  assert f"resumed from checkpoint at step {at}" in out and _checkpoints(gcs)[-1] == at + 2
  assert not (tmp_path / "gs:").exists()

  assert cli.main(["export", "--workdir", RUN, "--out", MODEL]) == 0
  assert epath.Path(MODEL, "config.json").exists()
  rng = np.random.default_rng(0)
  photos = tmp_path / "photos"
  photos.mkdir()
  Image.fromarray(np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
      (64, 64), Image.BILINEAR))).save(photos / "a.png")
  assert cli.main(["compress", str(photos / "a.png"), f"gs://{BUCKET}/out/a.jsc", "--model", MODEL]) == 0
  assert cli.main(["compress", str(photos / "a.png"), str(tmp_path / "a.jsc"), "--model", MODEL]) == 0
  remote = epath.Path(f"gs://{BUCKET}/out/a.jsc").read_bytes()
  assert remote == (tmp_path / "a.jsc").read_bytes() and len(remote) > 0
  assert cli.main(["compress", str(photos / "a.png"), f"gs://{BUCKET}/out/a.jsc", "--model", MODEL]) == 1

  assert cli.main(["eval", "--model", MODEL, "--data", str(photos), "--out",
                   f"gs://{BUCKET}/out/results.json"]) == 0
  results = json.loads(epath.Path(f"gs://{BUCKET}/out/results.json").read_text())
  assert results["results"]["bpp"][0] == pytest.approx(8 * len(remote) / (64 * 64))
  assert gcs.unhandled == []
