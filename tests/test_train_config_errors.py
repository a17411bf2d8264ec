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


def test_configs_resolve_to_the_packaged_copy_outside_a_clone(tmp_path, monkeypatch):
  import os

  from jaxsemic import config_io
  monkeypatch.chdir(tmp_path)  # no configs/ here, as for a pip-installed jaxsemic
  spec = config_io.resolve_config_path("configs/tiny.py:x")
  assert spec == os.path.join(config_io.PACKAGED, "tiny.py") + ":x"
  assert config_io.load_config("configs/tiny.py").model.N == 32
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "tiny.py").write_text("def get_config():\n  return None\n")
  assert config_io.resolve_config_path("configs/tiny.py") == "configs/tiny.py"  # a local file wins
  assert config_io.resolve_config_path("other/tiny.py") == "other/tiny.py"
