"""`data.kind = 'batch_files'`: model-ready batches saved by `scripts/pretokenize.py`, read with
NumPy only (no TensorFlow, no vocabulary), for machines without TensorFlow.

Fields: `data.batch_dir`; `data.batch_size`, `eval.batch_size`, `data.inputs_length` and
`data.targets_length` must match what was saved (a targets length of 0 means "derived", so it
matches any). Evaluation is the teacher-forced loss on the saved validation batches.
"""

from __future__ import annotations

import logging
import os

from adalink import config_fields as cf
from adalink.data.families import base

log = logging.getLogger("adalink.data")


class BatchFilesFamily(base.DataFamily):
  name = "batch_files"
  input_streams = ("text",)
  evaluation = "loss"

  def build(self, config, model: base.ModelFacts) -> base.Data:
    from adalink.data.pipeline import batch_files

    files = batch_files.BatchFiles(cf.existing_path(config, "data.batch_dir"))
    where = os.path.join(files.directory, batch_files.META)
    for field, split in (("data.batch_size", "train"), ("eval.batch_size", "validation")):
      if split not in files.meta["splits"]:
        continue
      want = cf.positive_int(config, field)
      if want != files.batch_size(split):
        raise ValueError(
          f"config.{field}={want}, but the {split} batches in {where} hold "
          f"{files.batch_size(split)} rows; set it to that or pretokenize again"
        )
    for name, field in (("inputs", "data.inputs_length"), ("targets", "data.targets_length")):
      want = int(cf.require(config, field) or 0)  # targets 0: derived from the inputs length
      if want and want != files.lengths.get(name):
        raise ValueError(
          f"config.{field}={want}, but the batches in {where} were saved with "
          f"{name} length {files.lengths.get(name)}"
        )
    vocab_size = int(files.source.get("vocab_size", 0))
    if vocab_size > model.vocab_size:
      raise ValueError(
        f"{where}: token ids from a {vocab_size}-id vocabulary, but the model's "
        f"table has {model.vocab_size} rows"
      )
    evals = {"pretrain": files} if "validation" in files.meta["splits"] else {}
    return base.Data(self.name, self, None, files, evals, dict(files.lengths))

  def train_batches(self, config, data, start_position, process_index, process_count):
    # Saved global batches: every process reads them all and keeps its rows.
    local = cf.positive_int(config, "data.batch_size") // process_count
    total = data.train.num_batches("train")

    def wrap(epoch):
      log.warning("saved train batches exhausted (%d); epoch %d starts over them", total, epoch)

    for batch in data.train.batches("train", start_position, repeat=True, on_wrap=wrap):
      yield {k: v[process_index * local : (process_index + 1) * local] for k, v in batch.items()}

  def loss_batches(self, config, data, split, batch_size):
    if not data.evals:
      raise ValueError(
        f"config.data.batch_dir={data.train.directory} has no validation batches "
        f"to evaluate on; pretokenize with --eval_batches > 0, or set "
        f"config.eval.enabled=False"
      )
    return data.train.batches(split)


FAMILY = base.register(BatchFilesFamily())
