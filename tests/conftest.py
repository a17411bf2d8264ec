"""Shared fixtures: one tiny SELIC model per session (compiling is the expensive part on CPU)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_MODEL = dict(name="selic", N=16, M=20, num_slices=4, max_support_slices=-1, charm_hidden=[16],
                  fusion="concat", text_dim=8, upsample="tconv")


@pytest.fixture(scope="session")
def tiny_cfg():
  from jaxsemic.models import ModelConfig
  return ModelConfig.from_any(TINY_MODEL)


@pytest.fixture(scope="session")
def tiny_params(tiny_cfg):
  from jaxsemic.codec.model_io import init_params
  return init_params(tiny_cfg, seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_cfg, tiny_params):
  from jaxsemic.codec.model_io import CodecModel
  return CodecModel.from_params(tiny_params, tiny_cfg)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_cfg, tiny_params):
  from jaxsemic.codec.model_io import save_model
  path = str(tmp_path_factory.mktemp("models") / "tiny")
  save_model(path, tiny_params, tiny_cfg)
  return path


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("configs") / "tiny_model.py"
  path.write_text("import ml_collections\n\ndef get_config():\n  c = ml_collections.ConfigDict()\n"
                  f"  c.model = ml_collections.ConfigDict({TINY_MODEL!r})\n  return c\n")
  return str(path)


@pytest.fixture(scope="session")
def photo():
  """A real photo shipped with scikit-image, cropped small (tests never read ../shared)."""
  from skimage import data
  return np.ascontiguousarray(data.astronaut()[100:140, 150:250])


def run_cli(*args, env=None, timeout=600):
  """Runs `python -m jaxsemic.cli ARGS` in a subprocess; returns the CompletedProcess."""
  import subprocess
  e = dict(os.environ, **(env or {}))
  return subprocess.run([sys.executable, "-m", "jaxsemic.cli", *map(str, args)], capture_output=True,
                        text=True, timeout=timeout, cwd=REPO, env=e)


def pytest_collection_modifyitems(config, items):
  """`slow` tests run only with JAXSEMIC_SLOW=1 (CI sets it when its time budget allows)."""
  if os.environ.get("JAXSEMIC_SLOW") == "1":
    return
  skip = pytest.mark.skip(reason="slow end-to-end check: set JAXSEMIC_SLOW=1 to run it")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)
