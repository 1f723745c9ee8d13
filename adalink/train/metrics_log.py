"""A run's metrics record: JSON lines in `workdir/metrics.jsonl` and TensorBoard summaries."""

from __future__ import annotations

import json
import logging
import os
from typing import Mapping

import jax

log = logging.getLogger("adalink.train")


class MetricsLog:
  """JSON lines in `workdir/metrics.jsonl` and TensorBoard summaries, from process 0 only."""

  def __init__(self, workdir: str):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.writer = None
    if self.active:
      try:
        from clu import metric_writers

        self.writer = metric_writers.create_default_writer(workdir, asynchronous=False)
      except Exception as e:  # TensorBoard is a convenience; the JSONL file is the record
        log.warning("TensorBoard summaries disabled: %s", e)

  def write(self, step: int, kind: str, values: Mapping[str, float]):
    if not self.active:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": step, "kind": kind, **values}) + "\n")
    if self.writer is not None:
      self.writer.write_scalars(step, {f"{kind}/{k}": v for k, v in values.items()})
      self.writer.flush()

  def close(self):
    if self.writer is not None:
      self.writer.close()
      self.writer = None
