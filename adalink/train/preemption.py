"""Stopping a training job cleanly when the machine is taken away (spot / preemptible VMs).

Such machines get SIGTERM and about 30 seconds. `StopRequest` turns SIGTERM and SIGINT into a
request that the training loop polls after each step: the loop then writes that step's
checkpoint, closes its writers and raises `adalink.errors.Preempted`, which scripts turn into exit
status 75 (`adalink.cli.EXIT_PREEMPTED`). The restart resumes from that checkpoint exactly.

Signals that arrive while the request is being served (a second SIGTERM, an impatient Ctrl-C
during the save) are noted and otherwise ignored, so they cannot interrupt the checkpoint write.

On several hosts a signal may reach one process only, or reach them at different steps; every
process must stop at the same step or they would save different steps (and the collective save
would hang). `should_stop` therefore agrees across processes: each process contributes its local
flag and all stop when any has one (an all-gather of one integer, every `check_every` steps, at
the same steps on every host).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Optional, Sequence

import jax
import numpy as np

log = logging.getLogger("adalink.train")

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
  """Context manager: while active, SIGTERM/SIGINT set a stop request instead of killing."""

  def __init__(self, signals: Sequence[int] = DEFAULT_SIGNALS, check_every: int = 1):
    if check_every < 1:
      raise ValueError(f"train.preemption_check_every must be >= 1, got {check_every}")
    self.signals = tuple(signals)
    self.check_every = int(check_every)
    self.signal_name: Optional[str] = None
    self.extra_signals = 0
    self._previous = {}
    self._active = False

  def __enter__(self) -> "StopRequest":
    # Handlers can only be installed from the main thread (e.g. not inside a test's worker).
    if threading.current_thread() is threading.main_thread():
      for sig in self.signals:
        self._previous[sig] = signal.signal(sig, self._handle)
      self._active = True
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous = {}
    self._active = False

  def _handle(self, signum, frame) -> None:
    name = signal.Signals(signum).name
    if self.signal_name is None:
      self.signal_name = name
      log.warning("%s received: finishing this step, then saving a checkpoint and stopping", name)
    else:
      self.extra_signals += 1
      log.warning("%s received again while stopping: ignored until the checkpoint is saved", name)

  def request(self, name: str = "request") -> None:
    """Asks for a stop from code (as a signal would)."""
    if self.signal_name is None:
      self.signal_name = name

  @property
  def requested_locally(self) -> bool:
    return self.signal_name is not None

  def should_stop(self, step: int) -> bool:
    """Whether every process stops after `step` (call it at the same steps on every process)."""
    if jax.process_count() == 1:
      return self.requested_locally
    if step % self.check_every:
      return False
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.asarray([int(self.requested_locally)], np.int32))
    stop = bool(np.max(flags))
    if stop and self.signal_name is None:
      self.signal_name = "SIGTERM (another process)"
    return stop
