"""Encoding with the batch sharded over 8 (fake CPU) devices and decoding on one device agree exactly."""

import os
import subprocess
import sys
import textwrap

from conftest import REPO, TINY_MODEL

SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from jaxsemic.codec import api
    from jaxsemic.codec.model_io import CodecModel, init_params
    from jaxsemic.models import ModelConfig
    assert jax.device_count() == 8, jax.devices()
    cfg = ModelConfig.from_any({model!r})
    model = CodecModel.from_params(init_params(cfg, seed=3), cfg)
    rng = np.random.default_rng(0)
    imgs = (rng.random((8, 40, 72, 3)) * 255).astype(np.uint8)
    texts = rng.normal(size=(8, cfg.text_dim)).astype(np.float32)
    sharding = NamedSharding(Mesh(np.array(jax.devices()), ("data",)), P("data"))
    streams, _ = api.compress_batch(model, imgs, texts, sharding=sharding)
    cpu0 = jax.devices()[0]
    with jax.default_device(cpu0):
      for n in range(8):
        single, _ = api.compress(model, imgs[n], texts[n])
        assert single == streams[n], f"image {{n}}: sharded batch and single-device bitstreams differ"
        out = api.decompress(model, streams[n])
        ref = api.reconstruct(model, imgs[n:n + 1], texts[n:n + 1])[0][0]
        assert np.array_equal(out, ref), f"image {{n}}: decoded image differs from the inference pass"
    print("OK", sum(map(len, streams)))
""")


def test_sharded_encode_single_device_decode(tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  script = tmp_path / "sharded.py"
  script.write_text(SCRIPT.format(model=TINY_MODEL))
  r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, env=env,
                     timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.startswith("OK")
