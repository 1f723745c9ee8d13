"""How scripts end: a result, or one line `error: ...` on stderr and a distinct exit status.

    def main(argv): ...
    if __name__ == "__main__":
      cli.run(main)             # argparse scripts: main(argv) parses its own arguments
      cli.run_absl(main)        # absl scripts (config flags): flags are parsed here

A project error (`adalink.errors.USER_ERRORS`: a bad config field, a missing file, a refused
checkpoint, adapter or data row) prints as one line and exits with `EXIT_USER_ERROR` (2); a job
stopped by SIGTERM/SIGINT after saving exits with `EXIT_PREEMPTED` (75, "try again"). `--debug`
on the command line or `ADALINK_DEBUG=1` in the environment re-raises instead, with the traceback.
Anything else is a bug and keeps Python's traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Optional, Sequence

from adalink import errors

EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 75
DEBUG_FLAG = "--debug"
DEBUG_ENV = "ADALINK_DEBUG"


def one_line(message: object, limit: int = 600) -> str:
  """The message on one line (libraries' multi-line messages joined), at most `limit` chars."""
  text = " ".join(str(message).split())
  return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(exc: BaseException) -> str:
  if isinstance(exc, KeyError) and len(exc.args) == 1:
    return one_line(exc.args[0])  # str(KeyError) adds quotes around the message
  if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in str(exc):
    return one_line(f"{exc}: {exc.filename}")
  return one_line(exc) or type(exc).__name__


def debug_requested(argv: Sequence[str]) -> bool:
  return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _strip_debug(argv: Sequence[str]) -> list:
  return [a for a in argv if a != DEBUG_FLAG]


def _finish(exc: BaseException) -> int:
  if isinstance(exc, errors.Preempted):
    print(f"preempted: {describe(exc)}", file=sys.stderr, flush=True)
    return EXIT_PREEMPTED
  print(f"error: {describe(exc)}", file=sys.stderr, flush=True)
  return EXIT_USER_ERROR


def run(main: Callable[[list], Optional[int]], argv: Optional[Sequence[str]] = None) -> None:
  """Calls `main(argv)` (argv without the program name and without `--debug`) and exits."""
  argv = list(sys.argv[1:] if argv is None else argv)
  debug = debug_requested(argv)
  try:
    status = main(_strip_debug(argv))
  except errors.USER_ERRORS as e:
    if debug:
      raise
    sys.exit(_finish(e))
  sys.exit(status or 0)


def _flag_error_message(exc: BaseException) -> str:
  """A flag error's message without the traceback that config_flags embeds in it: a config
  file's own error (e.g. an unknown variant) is the traceback's last line."""
  text = str(exc)
  if "Traceback (most recent call last)" not in text:
    return one_line(text)
  last = [line for line in text.splitlines() if line.strip()][-1].strip()
  name, sep, message = last.partition(": ")
  return one_line(message if sep and name.replace(".", "").isidentifier() else last)


def run_absl(main: Callable[[list], Optional[int]], argv: Optional[Sequence[str]] = None) -> None:
  """As `run`, for scripts whose flags (e.g. `config_flags`) are absl flags: parses them here so a
  bad `--config` (the config file's own ValueError) is one line too."""
  from absl import flags, logging

  argv = list(sys.argv if argv is None else argv)
  debug = debug_requested(argv)
  argv = _strip_debug(argv)
  try:
    try:
      remaining = flags.FLAGS(argv)
    except flags.Error as e:
      cause = e.__cause__ or e.__context__
      if isinstance(cause, errors.USER_ERRORS) and "Traceback" not in str(cause):
        raise cause from None
      raise ValueError(_flag_error_message(cause if cause is not None else e)) from None
    logging.use_absl_handler()
    status = main(remaining)
  except errors.USER_ERRORS as e:
    if debug:
      raise
    sys.exit(_finish(e))
  sys.exit(status or 0)
