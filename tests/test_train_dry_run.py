"""The dry run on 8 fake CPU devices in 2 processes: per-device batch, memory and the compiled step's FLOPs."""

from __future__ import annotations

import json
import os

import pytest

from test_train_multihost import run_two_processes
from test_train_standin import write_images

_RUN = r"""
import json, sys
from test_train_standin import standin_for, standin_loss, tiny_train_config
from jaxsemic.training import dry_run
config = tiny_train_config(sys.argv[1], batch_size=8, dry_run=True)
print(json.dumps(dry_run.dry_run(config, model=standin_for(config), loss_fn=standin_loss)))
"""


@pytest.mark.slow
def test_dry_run_on_two_processes_of_four_devices(tmp_path):
  data = write_images(str(tmp_path / "data"), count=6)
  outs = run_two_processes([_RUN, data], cwd=str(tmp_path),
                           XLA_FLAGS="--xla_force_host_platform_device_count=4")
  print(outs[0])
  for pid, out in enumerate(outs):
    n = json.loads(out.strip().splitlines()[-1])
    assert f"dry run, process {pid} of 2: mesh ('data': 8), 4 local device(s)" in out
    assert (n["devices"], n["processes"], n["batch_per_process"], n["batch_per_device"]) == (8, 2, 4, 1)
    assert n["process_shard_images"] == 3 and "local batch image [4, 64, 64, 3]" in out
    # The stand-in's 10,388 float32 params (Dense 768->6, 96->4, 6->768 + two scales); Adam keeps 2 moments.
    assert n["num_params"] == 768 * 6 + 6 + 96 * 4 + 4 + 6 * 768 + 768 + 6 + 4 == 10388
    assert n["params_mib_per_device"] * 2 ** 20 == 4 * 10388
    assert n["opt_state_mib_per_device"] >= 2 * n["params_mib_per_device"]
    assert n["step_gflops_per_device"] > 0 and n["xla_temp_mib"] > 0
  assert sorted(os.listdir(tmp_path)) == ["data"]  # nothing trained, no checkpoint, no logs
