#!/usr/bin/env python
r"""Save a config's training and validation batches as NumPy files, for machines without TensorFlow.

  python scripts/pretokenize.py --config=configs/pretrain.py:mini --out=/data/mini_batches \
      --train_batches=2000 --eval_batches=20
  # then, on the accelerator machine (jax/flax/optax/orbax, no TensorFlow needed):
  python scripts/train.py --config=configs/pretrain.py:mini,batches=/data/mini_batches --workdir=DIR

Runs the config's seqio pipeline here (tokenising, span corruption or prefix LM, packing) and
writes exactly the batches training would read: train batches 0..N-1 of the config's shuffled
stream (seed `config.seed`, global batch `config.data.batch_size`) and the first validation
batches at `config.eval.batch_size` (the last one padded with empty rows, as evaluation does).
Training past N batches starts over from batch 0, with a warning. The output directory must not
exist yet; it is written under a temporary name and renamed when complete, so a failed run leaves
nothing that looks finished.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file(
  "config", None, "Config file, e.g. configs/pretrain.py:mini", lock_config=True
)
flags.DEFINE_string("out", None, "Directory to create with the batches and meta.json.")
flags.DEFINE_integer("train_batches", None, "How many global train batches to save.")
flags.DEFINE_integer(
  "eval_batches",
  None,
  "How many validation batches to save (default: config.eval.max_batches, "
  "0 there meaning the whole split).",
)
flags.DEFINE_integer("batches_per_shard", 100, "Batches per .npz file.")
flags.mark_flags_as_required(["config", "out", "train_batches"])


def pretokenize(
  config, out: str, train_batches: int, eval_batches=None, batches_per_shard: int = 100
) -> str:
  """Writes the batches; -> the path of meta.json."""
  import jax
  import numpy as np
  from adalink.data.pipeline import batch_files
  from adalink.data.pipeline import features
  from adalink.train import trainer

  if train_batches <= 0:
    raise ValueError(f"--train_batches must be positive, got {train_batches}")
  if config.data.kind != "pretrain":
    raise ValueError(
      f"config.data.kind={config.data.kind!r}: pretokenize.py saves pretraining "
      f"batches, from a config with data.kind='pretrain' (configs/pretrain.py "
      f"without ,batches=)"
    )
  if os.path.exists(out):
    raise FileExistsError(
      f"--out {out} exists; choose a new directory (saved batches are never overwritten)"
    )
  if jax.process_count() != 1:
    raise RuntimeError("run pretokenize.py as a single process: it saves global batches")
  p = trainer.plan(config)
  data = trainer.build_data(config, p.model_config)
  if eval_batches is None:
    eval_batches = int(trainer._get(config, "eval.max_batches", 0) or 0) or None
  eval_size = int(trainer._get(config, "eval.batch_size", config.data.batch_size))
  tmp = f"{out}.tmp-{os.getpid()}"
  os.makedirs(tmp)
  try:
    splits = {
      "train": batch_files.write_split(
        tmp, "train", trainer.train_batches(config, data, 0), train_batches, batches_per_shard
      )
    }
    if eval_batches != 0:
      split = trainer._get(config, "eval.split", "validation")
      evals = (
        {
          k: trainer._pad_rows(np.asarray(v), eval_size)
          for k, v in b.items()
          if k in trainer.step_lib.MODEL_FEATURES or k == "decoder_loss_weights"
        }
        for b in features.make_batches(
          data.evals["pretrain"],
          split,
          data.lengths,
          eval_size,
          shuffle=False,
          repeat=False,
          pack=bool(trainer._get(config, "data.pack", False)),
        )
      )
      splits["validation"] = batch_files.write_split(
        tmp, "validation", evals, eval_batches if eval_batches else 1 << 62, batches_per_shard
      )
    source = {"config": trainer._config_json(config), "vocab_size": int(data.vocabulary.vocab_size)}
    batch_files.write_meta(tmp, splits, data.lengths, source)
    os.rename(tmp, out)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return os.path.join(out, batch_files.META)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  f = flags.FLAGS
  meta = pretokenize(f.config, f.out, f.train_batches, f.eval_batches, f.batches_per_shard)
  from adalink.data.pipeline import batch_files

  files = batch_files.BatchFiles(os.path.dirname(meta))
  size = sum(os.path.getsize(os.path.join(files.directory, n)) for n in os.listdir(files.directory))
  print(
    f"wrote {files.num_batches('train')} train batches of {files.batch_size('train')}"
    + (
      f" and {files.num_batches('validation')} validation batches of "
      f"{files.batch_size('validation')}"
      if "validation" in files.meta["splits"]
      else ""
    )
    + f", lengths {files.lengths}, {size / 2**20:.1f} MiB, to {files.directory}"
  )


if __name__ == "__main__":
  app.run(main)
