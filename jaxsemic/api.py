"""The Python API (`import jaxsemic`): load a model, compress an image to bytes, decompress bytes to an image.

    import jaxsemic
    model = jaxsemic.pretrained("selic-q2")          # or jaxsemic.load_model("models/mine")
    data = jaxsemic.compress(model, "photo.png", caption="a red boat on a lake")
    image = jaxsemic.decompress(data)                 # uint8 [H, W, 3]; finds a shipped model by the file's id

Text-guided models get the caption's vector from the text encoder they were trained with; with no caption
they get the empty caption's vector, exactly as `jaxsemic compress` does, so API and CLI write the same file.
"""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from jaxsemic.errors import UserError

ImageLike = Union[str, os.PathLike, np.ndarray]


def load_model(path_or_name: str | os.PathLike):
  """A model directory (`jaxsemic export` / `init` / `import-compressai`) or a shipped model name."""
  from jaxsemic import shipped
  from jaxsemic.codec import model_io
  return model_io.load_model(shipped.resolve(os.fspath(path_or_name)))


def pretrained(name: str = "selic-q2"):
  """A model shipped with the package: 'selic-q1' (smallest files) … 'selic-q3' (the default is 'selic-q2')."""
  from jaxsemic import shipped
  return shipped.load(name)


def _image(image: ImageLike) -> np.ndarray:
  from jaxsemic.codec import image_io
  if isinstance(image, np.ndarray):
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
      raise UserError(f"expected a uint8 [H, W, 3] array, got {image.dtype} {image.shape}")
    return image
  return image_io.read_image(os.fspath(image), quiet=True)


def text_vector(model, caption: str | None, text_encoder: str | None = None) -> np.ndarray | None:
  """The vector a text-guided model is given for `caption` (None: the empty caption); None for other models."""
  if not model.text_dim:
    return None
  from jaxsemic.text_lookup import embed_caption
  return embed_caption(caption or "", model, text_encoder)


def compress(model, image: ImageLike, caption: str | None = None, *, text_encoder: str | None = None) -> bytes:
  """The .jsc bytes of one image (a path or a uint8 [H, W, 3] array)."""
  from jaxsemic.codec import api
  data, _ = api.compress(model, _image(image), text_vector(model, caption, text_encoder))
  return data


def decompress(data: bytes, model=None) -> np.ndarray:
  """uint8 [H, W, 3] from .jsc bytes; without a model, the shipped model named by the file's model id."""
  from jaxsemic.codec import api, bitstream, model_io
  if model is None:
    from jaxsemic import shipped
    model_id = bitstream.unpack(data).model_id
    model = model_io.load_model(shipped.dir_for_model_id(model_id, "this .jsc", "its model"))
  return api.decompress(model, data)
