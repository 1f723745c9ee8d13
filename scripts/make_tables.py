#!/usr/bin/env python
r"""Paper-shaped Markdown tables and a score-vs-rank plot from sweep results.

  python scripts/make_tables.py --results=/tmp/sweep/results.jsonl [--plot=/tmp/sweep/rank.png]

Rows are methods (with rank), columns the tasks' scores (the mean of each task's metrics, as the
GLUE score does) and their average, plus trainable parameters, as in Tables 5 and 6 of the paper.
When several runs share a row and task, the latest is shown (`adalink.experiments.tables`).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402
from adalink.experiments import tables  # noqa: E402


def main(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--results", required=True)
  p.add_argument("--plot", default=None, help="write a PNG of score vs rank here")
  args = p.parse_args(argv)
  records = tables.load(args.results)
  print(tables.table(records))
  if args.plot:
    tables.plot(records, args.plot)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
  cli.run(main)
