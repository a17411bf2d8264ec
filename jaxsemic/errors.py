"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class UserError(Exception):
  """A problem with what the user gave (file, flag, model); shown without a traceback."""
