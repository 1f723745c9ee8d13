#!/usr/bin/env python
r"""Evaluate a run's checkpoint on its tasks (or others) and print the metrics.

  python scripts/eval.py --workdir=/tmp/w                     # latest checkpoint
  python scripts/eval.py --workdir=/tmp/w --which=best --split=validation
  python scripts/eval.py --workdir=/tmp/w --tasks=sst2,rte --data_dir=/data/glue_data

The model, method, base checkpoint and data settings come from the run's config.json; flags
override the evaluation settings. With --output, the metrics are also written as one JSON line.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import app, flags

flags.DEFINE_string("workdir", None, "Run directory written by scripts/train.py.")
flags.DEFINE_enum("which", "latest", ["latest", "best"], "Which checkpoint to evaluate.")
flags.DEFINE_integer("step", None, "A specific step (default: the newest of --which).")
flags.DEFINE_string("split", None, "Eval split (default: the run's eval.split).")
flags.DEFINE_string("tasks", None, "Comma-separated GLUE tasks (default: the run's).")
flags.DEFINE_string("data_dir", None, "glue_data/ folder (default: the run's).")
flags.DEFINE_integer("max_examples", None, "Stop after this many examples per task.")
flags.DEFINE_enum("decode", None, ["greedy", "beam"], "Decoding method.")
flags.DEFINE_string("output", None, "Append the metrics as a JSON line to this file.")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from adalink.train import trainer

  config = trainer.load_run_config(FLAGS.workdir)
  config.train.quiet = True
  for flag, dotted in (
    ("split", "eval.split"),
    ("max_examples", "eval.max_examples"),
    ("decode", "eval.decode"),
    ("data_dir", "data.data_dir"),
  ):
    value = getattr(FLAGS, flag)
    if value is not None:
      section, field = dotted.split(".")
      config[section][field] = value
  if FLAGS.tasks:
    config.data.tasks = tuple(t for t in FLAGS.tasks.split(",") if t)
  model, variables, data, p, step = trainer.restore_for_eval(
    config, FLAGS.workdir, FLAGS.which, FLAGS.step
  )
  results = trainer.evaluate(model, variables, data, config, p.mesh, p.spec)
  for k, v in sorted(results.items()):
    print(f"{k}: {v:.4f}")
  if FLAGS.output:
    record = {
      "workdir": os.path.abspath(FLAGS.workdir),
      "step": step,
      "which": FLAGS.which,
      "method": config.method.to_dict(),
      "tasks": list(config.data.tasks),
      "model_size": config.model.size,
      **results,
    }
    with open(FLAGS.output, "a") as f:
      f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
  app.run(main)
