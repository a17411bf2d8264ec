"""SEDIC end to end: image + descriptions + masks -> one `.sedic` file, and back (Song et al., Sec. III, Fig. 2).

The encoder codes the reference image Ĩ_0 with a zoo model (its sub-streams are embedded, not a nested `.jsc`),
keeps J objects and the word limits l_d / l_all (Table V), codes the texts with the PPM coder and the masks on
the decoder's latent grid, and packs everything into the container (`container.py`, docs/bitstream.md).
`decode_reference` gives Ĩ_0 alone; `decode` runs the multi-stage decoder (`pipeline.decode`, Algorithm 1).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from jaxsemic.codec import api, bitstream
from jaxsemic.codec.model_io import CodecModel
from jaxsemic.errors import UserError
from jaxsemic.sedic import container, maskcode, textcode
from jaxsemic.sedic.descriptions import Descriptions, limit_words

COMPONENTS = ("reference", "text", "masks", "header", "total")  # the rows of the paper's Table VIII


def component_rates(data: bytes, height: int, width: int) -> dict[str, dict[str, float]]:
  """{"bits": ..., "bpp": ...} per Table VIII component of a packed file (header = container overhead)."""
  bits = container.component_bits(data)
  return {"bits": {k: bits[k] for k in COMPONENTS}, "bpp": {k: bits[k] / (height * width) for k in COMPONENTS}}


def latent_masks(masks: Sequence[np.ndarray] | np.ndarray, j: int, hw: tuple[int, int]) -> np.ndarray:
  """bool[J, h, w] on the decoder's grid: the first J masks (any size) resized to the image, then reduced."""
  if len(masks) < j:
    raise UserError(f"{j} objects but {len(masks)} masks")
  grid = maskcode.latent_hw(*hw)
  out = [maskcode.to_latent_grid(maskcode.resize_mask(np.asarray(m) != 0, hw), grid) for m in list(masks)[:j]]
  return np.stack(out) if out else np.zeros((0, *grid), bool)


def same_aspect(a: tuple[int, ...], b: tuple[int, ...], tolerance: float = 0.01) -> bool:
  """Whether two (height, width) sizes have the same aspect ratio within `tolerance` (relative)."""
  return abs(a[0] * b[1] - a[1] * b[0]) <= tolerance * a[1] * b[0]


def encode(image: np.ndarray, descriptions: Descriptions, masks: Sequence[np.ndarray] | np.ndarray | None,
           reference_model: CodecModel, j: int = 3, l_d: int = 30, l_all: int = 50,
           text_model_id: int = textcode.DEFAULT_MODEL) -> tuple[bytes, dict]:
  """The `.sedic` bytes of one uint8 [H, W, 3] image and info (Table VIII bits and bpp per component).

  descriptions: the LMM's texts (cut here to J = min(j, objects) objects, l_d and l_all words); masks: one
  2-D mask per object in the same order, any size (resized to the image by nearest neighbour), at least J.
  """
  start = time.perf_counter()
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
    raise UserError(f"expected a uint8 image [H, W, 3], got {image.dtype} {image.shape}")
  h, w = image.shape[:2]
  desc = limit_words(descriptions, j, l_d, l_all)
  n_obj = len(desc.objects)
  grid = latent_masks([] if masks is None else masks, n_obj, (h, w)) if n_obj else None
  jsc, _ = api.compress(reference_model, image, tile=0)  # a .sedic file carries untiled streams
  ref = bitstream.unpack(jsc)
  if ref.flags:
    raise UserError(f"the reference codec writes .jsc flags {ref.flags:#x}, which a .sedic file cannot carry")
  text_stream, mask_stream = container.encode_semantics(desc, grid, True, textcode.TextModel.load(text_model_id))
  data = container.pack(container.SedicFile(
      ref_model_id=ref.model_id, text_model_id=text_model_id, height=h, width=w, j=n_obj, names_sent=True,
      l_d=l_d, l_all=l_all, ref_streams=ref.streams, text_stream=text_stream, mask_stream=mask_stream,
      version=ref.version))
  notes = [f"mask {i + 1} ({desc.objects[i].name!r}) is {m.shape[1]}x{m.shape[0]}, stretched to the {w}x{h} image"
           for i, m in enumerate([] if masks is None else list(masks)[:n_obj]) if not same_aspect(m.shape, (h, w))]
  notes += [f"mask {i + 1} ({desc.objects[i].name!r}) is empty on the {grid.shape[2]}x{grid.shape[1]} latent grid"
            for i in range(n_obj) if not grid[i].any()]
  info = {"bytes": len(data), "height": h, "width": w, "J": n_obj, "l_d": l_d, "l_all": l_all,
          "reference_model": ref.model_id.hex(), **component_rates(data, h, w), "notes": notes,
          "seconds": time.perf_counter() - start}
  return data, info


def reference_jsc(f: container.SedicFile) -> bytes:
  """The reference image's `.jsc` rebuilt from the embedded sub-streams."""
  return bitstream.pack(bitstream.Bitstream(f.ref_model_id, f.height, f.width, f.ref_streams, version=f.version))


def decode_reference(file_bytes: bytes, reference_model: CodecModel) -> np.ndarray:
  """Ĩ_0, the reference image alone (uint8 [H, W, 3]): what `sedic decode --reference-only` writes."""
  f = container.unpack(file_bytes)
  container.check_reference(f, reference_model.model_id)
  return api.decompress(reference_model, reference_jsc(f))


class SedicDecoded(NamedTuple):
  """The decoded image, the reference image (both uint8 [H, W, 3]), the texts, the latent masks, timings."""
  image: np.ndarray
  reference: np.ndarray
  descriptions: Descriptions
  masks: np.ndarray  # bool [J, h, w]
  seconds: dict[str, float]
  stages: list  # pipeline.StageResult per stage


def pad_reference(image: np.ndarray, multiple: int) -> np.ndarray:
  """Edge-replicates uint8 [H, W, 3] to multiples of `multiple` (the codec's padding, `api.pad_images`)."""
  return api.pad_images(image[None], multiple)[0]


def decode(file_bytes: bytes, reference_model: CodecModel, components, cfg=None, seed: int = 0,
           on_stage: Callable[[str, int], Callable | None] | None = None) -> SedicDecoded:
  """Algorithm 1 on a `.sedic` file: unpack, decode Ĩ_0, texts and masks, run `pipeline.decode`, crop.

  components: `pipeline.load_components(...)` or `pipeline.tiny_components()`; cfg: a `pipeline.DecoderConfig`.
  A file without names uses every prompt token for eq. 2 (token_rule 'all'); a file without masks guides
  each object over the whole image.
  """
  from jaxsemic.sedic import pipeline  # pylint: disable=import-outside-toplevel (pulls in the diffusion models)
  cfg = pipeline.DecoderConfig() if cfg is None else cfg
  f = container.unpack(file_bytes)
  container.check_reference(f, reference_model.model_id)
  desc, masks = container.decode_semantics(f)
  if not f.names_sent and cfg.token_rule == "name":
    cfg = dataclasses.replace(cfg, token_rule="all")
  grid_h, grid_w = maskcode.latent_hw(f.height, f.width)
  if masks is None:
    masks = np.ones((f.j, grid_h, grid_w), bool)
  if components.vae_factor != maskcode.FACTOR or maskcode.PAD % (components.vae_factor * components.latent_multiple):
    raise UserError(f"the decoder's latent grid (VAE factor {components.vae_factor}, UNet multiple "
                    f"{components.latent_multiple}) does not fit the .sedic mask grid (image padded to "
                    f"{maskcode.PAD}, / {maskcode.FACTOR})")
  start = time.perf_counter()
  reference = api.decompress(reference_model, reference_jsc(f))
  seconds = {"reference": time.perf_counter() - start}
  out = pipeline.decode(pad_reference(reference, maskcode.PAD), desc, masks, components, cfg, seed, on_stage)
  seconds.update(out.seconds)
  seconds["total"] += seconds["reference"]
  return SedicDecoded(out.image[:f.height, :f.width], reference, desc, masks, seconds, out.stages)
