#!/usr/bin/env python
r"""Evaluate a run's checkpoint on its tasks (or others) and print the metrics.

  python scripts/eval.py --workdir=/tmp/w                     # latest checkpoint
  python scripts/eval.py --workdir=/tmp/w --which=best --split=validation
  python scripts/eval.py --workdir=/tmp/w --tasks=sst2,rte --data_dir=/data/glue_data

The model, method, base checkpoint and data settings come from the run's config.json; flags
override the evaluation settings. With --output, the metrics are also written as one JSON line;
with --predictions, every decoded example (its input text, the decoded text and the target).
The work is `adalink.experiments.run_eval.evaluate_run`.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import flags  # noqa: E402

from adalink import cli  # noqa: E402

flags.DEFINE_string("workdir", None, "Run directory written by scripts/train.py.")
flags.DEFINE_enum("which", "latest", ["latest", "best"], "Which checkpoint to evaluate.")
flags.DEFINE_integer("step", None, "A specific step (default: the newest of --which).")
flags.DEFINE_string("split", None, "Eval split (default: the run's eval.split).")
flags.DEFINE_string("tasks", None, "Comma-separated GLUE tasks (default: the run's).")
flags.DEFINE_string("data_dir", None, "glue_data/ folder (default: the run's).")
flags.DEFINE_integer("max_examples", None, "Stop after this many examples per task.")
flags.DEFINE_enum("decode", None, ["greedy", "beam"], "Decoding method.")
flags.DEFINE_string("output", None, "Append the metrics as a JSON line to this file.")
flags.DEFINE_string(
  "predictions", None, "Write every decoded example (set, inputs, prediction, target) as JSONL."
)
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from adalink.experiments import run_eval

  results, record = run_eval.evaluate_run(
    FLAGS.workdir,
    FLAGS.which,
    FLAGS.step,
    overrides={
      "eval.split": FLAGS.split,
      "eval.max_examples": FLAGS.max_examples,
      "eval.decode": FLAGS.decode,
      "data.data_dir": FLAGS.data_dir,
    },
    tasks=[t for t in (FLAGS.tasks or "").split(",") if t],
    predictions_path=FLAGS.predictions,
  )
  for k, v in sorted(results.items()):
    print(f"{k}: {v:.4f}")
  if FLAGS.output:
    run_eval.append_record(FLAGS.output, record)


if __name__ == "__main__":
  cli.run_absl(main)
