"""Errors meant for the person running a job, as opposed to bugs.

Scripts print these as one line, `error: <message>`, and exit with status 2 (see `adalink.cli`).
The project mostly raises the standard types for bad input (`ValueError` naming a config field,
`FileNotFoundError` naming a path); the classes here mark the cases that have no standard type.
"""

from __future__ import annotations


class AdalinkError(Exception):
  """An error whose message says what is wrong and what to do; no traceback is needed."""


class CheckpointError(AdalinkError):
  """No readable checkpoint, or a checkpoint that could not be written."""


class Preempted(AdalinkError):
  """The job was asked to stop (SIGTERM / SIGINT) and saved its state at `step`."""

  def __init__(self, step: int, checkpoint_dir: str, signal_name: str):
    self.step = step
    self.checkpoint_dir = checkpoint_dir
    self.signal_name = signal_name
    super().__init__(
      f"stopped by {signal_name} after step {step}; its checkpoint is in {checkpoint_dir}. "
      f"Run the same command again to resume."
    )


# What scripts report as one line: the project's own errors and the standard types it raises for
# bad input (config fields, missing or existing files, refused checkpoints and data rows).
USER_ERRORS = (
  AdalinkError,
  ValueError,
  KeyError,
  FileNotFoundError,
  FileExistsError,
  NotADirectoryError,
  IsADirectoryError,
  PermissionError,
  FloatingPointError,
)
