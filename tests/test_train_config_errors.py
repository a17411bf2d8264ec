"""`python -m jaxsemic.train` refuses a misspelt config field or a missing config file in one line, before the workdir."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("args, expect", [
    (["--config=configs/tiny.py", "--config.lmbdaa=1"], 'unknown config field lmbdaa; Did you mean "lmbda"'),
    (["--config=configs/tiny.py", "--config.lmbda=abc"], "--config.lmbda=abc"),
    (["--config=configs/no_such_config.py"], "cannot load --config: [Errno 2] No such file"),
])
def test_config_errors_are_one_line(tmp_path, args, expect):
  workdir = tmp_path / "run"
  r = subprocess.run([sys.executable, "-m", "jaxsemic.train", *args, f"--workdir={workdir}"], cwd=REPO,
                     capture_output=True, text=True, timeout=120)
  assert r.returncode == 2, r.stderr
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("jaxsemic.train: error: ") and expect in lines[0], r.stderr
  assert not workdir.exists()
