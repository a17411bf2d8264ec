"""After a (tiny) training run: export the model, then compress and decompress one image."""

from __future__ import annotations

import os

import ml_collections

from jaxsemic.training import evaluate
from jaxsemic.training.export import export_model


def export_and_roundtrip(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Exports to workdir/model, round-trips config.demo.image (default: astronaut); prints bpp and PSNR."""
  from jaxsemic.codec import api, model_io  # pylint: disable=import-outside-toplevel
  from jaxsemic.data import builtin  # pylint: disable=import-outside-toplevel
  model_dir = os.path.join(workdir, "model")
  step = export_model(workdir, model_dir, force=True)
  path = config.demo.image or os.path.join(builtin.photo_dir(), "astronaut.png")
  image = api.read_image(path)
  codec = model_io.load_model(model_dir)
  data, info = api.compress(codec, image)
  restored = api.decompress(codec, data)
  result = {"bpp": float(info["bpp"]), "psnr": evaluate.psnr(image, restored), "bytes": len(data)}
  print(f"exported step {step} to {model_dir}; {os.path.basename(path)} "
        f"{image.shape[1]}x{image.shape[0]}: {result['bytes']} bytes, {result['bpp']:.3f} bpp, "
        f"PSNR {result['psnr']:.2f} dB", flush=True)
  return result
