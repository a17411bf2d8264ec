"""jaxsemic: semantic-guided learned image compression in JAX/Flax.

The Python API (docs/api.md): `load_model`, `pretrained`, `compress`, `decompress`; imported lazily so that
`import jaxsemic` stays fast and the CLI's subcommands load only what they use.
"""

__version__ = "0.1.0"

_API = ("load_model", "pretrained", "compress", "decompress", "text_vector")


def __getattr__(name: str):
  if name in _API:
    from jaxsemic import api  # pylint: disable=import-outside-toplevel
    return getattr(api, name)
  raise AttributeError(f"module 'jaxsemic' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_API))
