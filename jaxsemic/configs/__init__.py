"""Training configs (`get_config()` files), shipped in the package so that an installed copy finds them.

The repository's top-level `configs/` links here, so `--config=configs/tiny.py` works in a clone; elsewhere
`jaxsemic.config_io.resolve_config_path` maps a `configs/NAME.py` that does not exist to this folder's copy.
"""
