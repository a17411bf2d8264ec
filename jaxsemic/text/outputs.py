"""Atomic output files for the text commands (the shared policy of `jaxsemic.io`; parent folders are created)."""

from __future__ import annotations

import functools

from jaxsemic import io

atomic_path = functools.partial(io.atomic_path, make_parent=True)
