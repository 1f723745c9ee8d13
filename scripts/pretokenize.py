#!/usr/bin/env python
r"""Save a config's training and validation batches as NumPy files, for machines without TensorFlow.

  python scripts/pretokenize.py --config=configs/pretrain.py:mini --out=/data/mini_batches \
      --train_batches=2000 --eval_batches=20
  # then, on the accelerator machine (jax/flax/optax/orbax, no TensorFlow needed):
  python scripts/train.py --config=configs/pretrain.py:mini,batches=/data/mini_batches --workdir=DIR

Writes exactly the batches training would read (train batches 0..N-1 of the config's stream, and
the first validation batches as evaluation reads them); the output directory must not exist yet
and appears only when complete (`adalink.experiments.pretokenize`).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from adalink import cli  # noqa: E402

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


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from adalink.experiments import pretokenize

  f = flags.FLAGS
  meta = pretokenize.pretokenize(
    f.config, f.out, f.train_batches, f.eval_batches, f.batches_per_shard
  )
  print(pretokenize.describe(meta))


if __name__ == "__main__":
  cli.run_absl(main)
