#!/usr/bin/env python
"""Print a data task's splits, sizes and first examples as the model will see them.

  python scripts/show_task.py                          # every GLUE task in shared/data/glue
  python scripts/show_task.py --task rte --num 5       # one task
  python scripts/show_task.py --task sst2 --data_dir adalink/data/fixtures/testdata/glue_tiny
  python scripts/show_task.py --task mnli --source tfds --tfds_data_dir ~/tensorflow_datasets
  python scripts/show_task.py --captions_json ../shared/data/captions-flickr8k-1k/captions.json

GLUE data comes from --data_dir (the glue_data/ layout; default: shared/data/glue beside the
checkout, or $ADALINK_SHARED/data/glue, else the project's tiny fixture). --vocab picks the byte
vocabulary (default) or SentencePiece (--vocab sentencepiece --vocab_path spiece.model). The
printing is `adalink.experiments.show_task`.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))

from adalink import cli  # noqa: E402


def parse_args(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument(
    "--task",
    default="all",
    help="a GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, mnli_matched, "
    "mnli_mismatched, qnli, rte) or 'all' (those present in --data_dir)",
  )
  p.add_argument("--source", default="tsv", choices=["tsv", "tfds"])
  p.add_argument("--data_dir", default=None, help="glue_data/ folder (source=tsv)")
  p.add_argument("--tfds_data_dir", default=None)
  p.add_argument(
    "--split",
    default=None,
    help="split to show (default: validation, or MNLI's validation_matched)",
  )
  p.add_argument("--num", type=int, default=5, help="examples to print per task")
  p.add_argument("--vocab", default="byte", choices=["byte", "sentencepiece"])
  p.add_argument("--vocab_path", default=None, help="spiece.model for --vocab sentencepiece")
  p.add_argument("--on_bad_row", default="error", choices=["error", "skip"])
  p.add_argument(
    "--captions_json",
    default=None,
    help="show a generic images+captions task from this JSON instead of GLUE",
  )
  p.add_argument("--image_size", type=int, default=224)
  return p.parse_args(argv)


def main(argv=None, out=None) -> int:
  a = parse_args(argv)
  from adalink.experiments import show_task

  out = out or sys.stdout
  common = dict(split=a.split, num=a.num, vocab=a.vocab, vocab_path=a.vocab_path)
  if a.captions_json:
    show_task.show_captions(out, a.captions_json, image_size=a.image_size, **common)
  else:
    show_task.show_glue(
      out,
      task=a.task,
      source=a.source,
      data_dir=a.data_dir,
      tfds_data_dir=a.tfds_data_dir,
      on_bad_row=a.on_bad_row,
      **common,
    )
  return 0


if __name__ == "__main__":
  cli.run(main)
