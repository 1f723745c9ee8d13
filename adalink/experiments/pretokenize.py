"""A config's training and validation batches saved as NumPy files, for machines without
TensorFlow (`data.kind = 'batch_files'` trains from them).

Runs the config's seqio pipeline here (tokenising, span corruption or prefix LM, packing) and
writes exactly the batches training would read: train batches 0..N-1 of the config's shuffled
stream (seed `config.seed`, global batch `config.data.batch_size`) and the first validation
batches at `config.eval.batch_size` (the last one padded with empty rows, as evaluation does), the
batches the loss evaluation reads. Training past N batches starts over from batch 0, with a
warning. The output directory must not exist yet; it is written under a temporary name and
renamed when complete, so a failed run leaves nothing that looks finished.
"""

from __future__ import annotations

import os
import shutil
from typing import Optional


def pretokenize(
  config,
  out: str,
  train_batches: int,
  eval_batches: Optional[int] = None,
  batches_per_shard: int = 100,
) -> str:
  """Writes the batches; -> the path of meta.json. `eval_batches` None: config.eval.max_batches
  (0 there meaning the whole split); 0: no validation batches."""
  import jax
  import numpy as np

  from adalink.data.pipeline import batch_files
  from adalink.train import inputs, trainer

  if train_batches <= 0:
    raise ValueError(f"--train_batches must be positive, got {train_batches}")
  if config.data.kind != "pretrain":
    raise ValueError(
      f"config.data.kind={config.data.kind!r}: pretokenize saves pretraining batches, from a "
      f"config with data.kind='pretrain' (configs/pretrain.py without ,batches=)"
    )
  if os.path.exists(out):
    raise FileExistsError(
      f"--out {out} exists; choose a new directory (saved batches are never overwritten)"
    )
  if jax.process_count() != 1:
    raise RuntimeError("run pretokenize as a single process: it saves global batches")
  p = trainer.plan(config)
  data = trainer.build_data(config, p.model_config)
  if eval_batches is None:
    eval_batches = int(trainer.config_get(config, "eval.max_batches", 0) or 0) or None
  eval_size = int(trainer.config_get(config, "eval.batch_size", config.data.batch_size))
  tmp = f"{out}.tmp-{os.getpid()}"
  os.makedirs(tmp)
  try:
    splits = {
      "train": batch_files.write_split(
        tmp, "train", trainer.train_batches(config, data, 0), train_batches, batches_per_shard
      )
    }
    if eval_batches != 0:
      split = trainer.config_get(config, "eval.split", "validation")
      evals = (
        {k: trainer.pad_rows(np.asarray(v), eval_size) for k, v in batch.items()}
        for batch in map(
          inputs.batch_features, data.family.loss_batches(config, data, split, eval_size)
        )
      )
      splits["validation"] = batch_files.write_split(
        tmp, "validation", evals, eval_batches if eval_batches else 1 << 62, batches_per_shard
      )
    source = {
      "config": trainer.config_to_json(config),
      "vocab_size": int(data.vocabulary.vocab_size),
    }
    batch_files.write_meta(tmp, splits, data.lengths, source)
    os.rename(tmp, out)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return os.path.join(out, batch_files.META)


def describe(meta_path: str) -> str:
  """One line: what a pretokenized directory holds."""
  from adalink.data.pipeline import batch_files

  files = batch_files.BatchFiles(os.path.dirname(meta_path))
  size = sum(os.path.getsize(os.path.join(files.directory, n)) for n in os.listdir(files.directory))
  return (
    f"wrote {files.num_batches('train')} train batches of {files.batch_size('train')}"
    + (
      f" and {files.num_batches('validation')} validation batches of "
      f"{files.batch_size('validation')}"
      if "validation" in files.meta["splits"]
      else ""
    )
    + f", lengths {files.lengths}, {size / 2**20:.1f} MiB, to {files.directory}"
  )
