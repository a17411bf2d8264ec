"""The `jaxsemic` command line: a thin dispatcher over subcommand modules.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
modules are imported only when their command runs, so `jaxsemic --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from jaxsemic.errors import UserError

# name -> (module, one-line help). Add a line here to add a command.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("jaxsemic.commands.demo", "the shipped models on a bundled photo, beside JPEG at the same size"),
    "init": ("jaxsemic.commands.init", "write a randomly initialised inference model"),
    "compress": ("jaxsemic.commands.codec", "compress an image to a .jsc file"),
    "decompress": ("jaxsemic.commands.codec", "decompress a .jsc file to a PNG"),
    "info": ("jaxsemic.commands.info", "describe a model directory or a .jsc file"),
    "embed-text": ("jaxsemic.commands.embed_text", "embed caption sidecars into a text-vector cache"),
    "caption": ("jaxsemic.commands.caption", "caption a folder of images with BLIP"),
    "eval": ("jaxsemic.commands.evaluate", "rate-distortion point of jaxsemic models on an image folder"),
    "bench": ("jaxsemic.commands.bench", "rate-distortion curve of a classic codec (JPEG, WebP, ...)"),
    "plot": ("jaxsemic.commands.plot", "plot rate-distortion curves from results JSON files"),
    "fid": ("jaxsemic.commands.fid", "FID and KID between two image folders (HiFiC-style 256x256 patches)"),
    "bdrate": ("jaxsemic.commands.bdrate", "Bjøntegaard BD-rate / BD-PSNR between results JSON files"),
    "import-compressai": ("jaxsemic.commands.import_compressai", "convert a CompressAI checkpoint to a model"),
    "zoo": ("jaxsemic.commands.zoo", "list CompressAI's pretrained models, or download and convert one"),
    "export": ("jaxsemic.commands.export", "write the inference model of a training run's newest checkpoint"),
    "sedic": ("jaxsemic.commands.sedic", "SEDIC .sedic files: encode, decode (reference only or Algorithm 1), info"),
}


def build_parser() -> argparse.ArgumentParser:
  """Builds the parser; subcommand arguments are added lazily by `main`."""
  parser = argparse.ArgumentParser(prog="jaxsemic", description=__doc__.splitlines()[0])
  parser.add_argument("command", choices=sorted(COMMANDS), help="subcommand")
  return parser


def main(argv: list[str] | None = None) -> int:
  """Entry point: parses the command name, then the command's own arguments."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if argv and argv[0] in ("-V", "--version"):
    from jaxsemic import __version__
    print(f"jaxsemic {__version__}")
    return 0
  if not argv or argv[0] in ("-h", "--help"):
    width = max(map(len, COMMANDS))
    lines = [f"  {k:<{width}}  {h}" for k, (_, h) in sorted(COMMANDS.items())]
    print("usage: jaxsemic COMMAND [options]\n\ncommands:\n" + "\n".join(lines))
    return 0 if argv else 2
  name = argv[0]
  if name not in COMMANDS:
    print(f"jaxsemic: error: unknown command {name!r} (try: {', '.join(sorted(COMMANDS))})",
          file=sys.stderr)
    return 2
  module = importlib.import_module(COMMANDS[name][0])
  parser = argparse.ArgumentParser(prog=f"jaxsemic {name}", description=COMMANDS[name][1])
  if module.add_arguments.__code__.co_argcount >= 2:
    module.add_arguments(parser, name)
  else:
    module.add_arguments(parser)
  args = parser.parse_args(argv[1:])
  args.command = name
  from jaxsemic.runtime import enable_compilation_cache
  enable_compilation_cache()
  try:
    return int(module.run(args) or 0)
  except UserError as e:
    print(f"jaxsemic {name}: error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print(f"jaxsemic {name}: interrupted", file=sys.stderr)
    return 130
  except Exception as e:  # noqa: BLE001 - last resort: one line, unless debugging.
    if os.environ.get("JAXSEMIC_DEBUG"):
      raise
    print(f"jaxsemic {name}: internal error: {type(e).__name__}: {e} "
          "(set JAXSEMIC_DEBUG=1 for a traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":
  sys.exit(main())
