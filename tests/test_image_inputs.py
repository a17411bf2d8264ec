"""read_image on awkward inputs (issue 15): EXIF orientation, multi-frame files, float samples."""

import numpy as np
import pytest
from PIL import Image

from jaxsemic.codec.image_io import read_image
from jaxsemic.errors import UserError


def _pattern(h=6, w=10):
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_exif_orientation_is_applied_with_a_note(tmp_path, capsys):
  a = _pattern()
  exif = Image.Exif()
  exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise for display
  path = tmp_path / "rot.png"
  Image.fromarray(a).save(path, exif=exif)
  out = read_image(str(path))
  np.testing.assert_array_equal(out, np.rot90(a, k=-1))
  assert "EXIF orientation 6 applied" in capsys.readouterr().err
  plain = tmp_path / "plain.png"
  Image.fromarray(a).save(plain)
  np.testing.assert_array_equal(read_image(str(plain)), a)
  assert capsys.readouterr().err == ""


def test_animated_gif_codes_its_first_frame_with_a_note(tmp_path, capsys):
  frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 255, 128)]
  path = tmp_path / "anim.gif"
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
  out = read_image(str(path))
  assert out.shape == (8, 8, 3) and int(out.max()) == 0
  assert "3 frames, coding the first" in capsys.readouterr().err


def test_float_images_are_mapped_by_their_range_or_refused(tmp_path, capsys):
  ramp = np.linspace(0, 1, 40, dtype=np.float32).reshape(4, 10)
  path = tmp_path / "unit.tif"
  Image.fromarray(ramp, mode="F").save(path)
  out = read_image(str(path))
  np.testing.assert_array_equal(out[..., 0], np.round(ramp * 255).astype(np.uint8))
  assert out.max() == 255 and "scaled by 255" in capsys.readouterr().err
  wide = tmp_path / "wide.tif"
  Image.fromarray(ramp * 1000 - 5, mode="F").save(wide)
  with pytest.raises(UserError, match="float samples in"):
    read_image(str(wide))
