"""Saves a config's training batches as batch files (`data.kind = 'batch_files'`).

Trainer processes that a test starts many times (a straight run, an interrupted one, its restart,
on one or two hosts) then read NumPy files instead of importing TensorFlow and building the seqio
pipeline, about 12 s of each process's start. What those tests check (signals, checkpoints,
resuming at the saved step and data position) does not depend on where the batches come from.
"""

import os

from adalink.data.pipeline import batch_files
from adalink.train import trainer


def save_train_batches(config, out: str, num_batches: int) -> dict:
  """Writes the first `num_batches` global batches `config` trains on to `out`.
  -> the overrides that make the same config train from them."""
  os.makedirs(out, exist_ok=True)
  data = trainer.build_data(config, trainer.plan(config).model_config)
  splits = {
    "train": batch_files.write_split(
      out, "train", trainer.train_batches(config, data, 0), num_batches
    )
  }
  source = {"config": trainer.config_to_json(config), "vocab_size": data.vocabulary.vocab_size}
  batch_files.write_meta(out, splits, data.lengths, source)
  return {"data.kind": "batch_files", "data.batch_dir": out}
