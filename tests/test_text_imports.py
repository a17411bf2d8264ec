"""The text package runs without PyTorch and transformers (they are test references only)."""

import subprocess
import sys

CODE = """
import sys
sys.modules['torch'] = None          # any `import torch` now fails
sys.modules['transformers'] = None
import jaxsemic.text.embed, jaxsemic.text.blip, jaxsemic.text.generate, jaxsemic.text.clip_text
import jaxsemic.text.clip_vision, jaxsemic.text.cache, jaxsemic.commands.embed_text, jaxsemic.commands.caption
enc = jaxsemic.text.embed.load_text_encoder()
assert enc.embed(['a red door']).shape == (1, 384)
print('ok')
"""


def test_text_package_needs_no_torch():
  out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
