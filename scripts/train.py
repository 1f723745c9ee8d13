#!/usr/bin/env python
r"""Train (and periodically evaluate) from a config: the main job of this codebase.

  python scripts/train.py --config=configs/glue.py:smoke --workdir=/tmp/w
  python scripts/train.py --config=configs/glue.py:flan_adalink_r4,task=rte --workdir=DIR \
      --config.model.checkpoint=/ckpt/flan-t5-xxl --config.method.rank=8

Re-running with the same --workdir resumes from its latest checkpoint.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from adalink import cli  # noqa: E402

config_flags.DEFINE_config_file(
  "config", None, "Config file, e.g. configs/glue.py:smoke", lock_config=True
)
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, metrics.jsonl, summaries.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from adalink.train import trainer

  result = trainer.train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
  metrics = result["metrics"]
  print(
    "final: "
    + ", ".join(
      f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(metrics.items())
    )
  )


if __name__ == "__main__":
  cli.run_absl(main)
