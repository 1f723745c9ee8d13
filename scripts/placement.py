#!/usr/bin/env python
r"""Adapter placement search on the T5 encoder: which single placement learns best, does gradient
rank predict it, and where does AdaLink's node-0 placement stand (arXiv 2410.15858).

  python scripts/placement.py --config=configs/placement.py:sst2 --out=/tmp/placement
  python scripts/placement.py --config=configs/placement.py:smoke --out=/tmp/placement_smoke

Writes OUT/placement.json, OUT/rank_heatmap.png, OUT/metric_heatmap.png and
OUT/rank_vs_metric.png, and prints Spearman(rank, metric) and the search table. The study is
`adalink.experiments.placement_study.run_study`; configs/placement.py documents every field.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from adalink import cli  # noqa: E402

config_flags.DEFINE_config_file("config", None, "e.g. configs/placement.py:sst2", lock_config=True)
flags.DEFINE_string("out", None, "Output folder for placement.json and the figures.")
flags.mark_flags_as_required(["config", "out"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from adalink.experiments import placement_study

  placement_study.run_study(flags.FLAGS.config, flags.FLAGS.out)


if __name__ == "__main__":
  cli.run_absl(main)
