"""Caption sidecars: jsonl lines `{"file": ..., "captions": [...]}` (or `"caption": "..."`).

The reader is `jaxsemic.io.read_captions` (one reader for training, evaluation and the commands).
"""

from __future__ import annotations

from jaxsemic.io import read_captions

__all__ = ["read_captions"]
