#!/usr/bin/env python
r"""Tables from sweep results: the paper's Tables 1-6 in their own shape, or a methods x tasks table.

  python scripts/make_tables.py --results=/runs/results.jsonl --paper-table 5 --with-paper
  python scripts/make_tables.py --results=/runs/results.jsonl --paper-table all --out=/runs/tables
  python scripts/make_tables.py --results=/tmp/sweep/results.jsonl [--plot=/tmp/sweep/rank.png]
  python scripts/make_tables.py --compare=shipped=/tmp/a/results.jsonl --compare=random=/tmp/b/results.jsonl

With --paper-table (a number, or `all`), each table is printed as Markdown in the paper's columns,
filled from the results of `scripts/sweep.py --paper-table` runs (their best checkpoints), with the
paper's numbers on a line under each row when --with-paper; --out writes TABLE_N.md, TABLE_N.csv
and, for the rank tables 2 and 6, TABLE_N.png (`adalink.experiments.paper_tables`). Without it,
rows are methods (with rank), columns the tasks' headline scores and their average, plus trainable
parameters (`adalink.experiments.tables`). With --compare, one such table for a grid trained from
several bases, each cell `A / B`, with each base's average minus its FT's.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402
from adalink.experiments import tables  # noqa: E402


def _tables(value: str):
  if value == "all":
    return [1, 2, 3, 4, 5, 6]
  try:
    numbers = [int(x) for x in value.split(",")]
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected table numbers 1-6 or 'all', got {value!r}")
  bad = [n for n in numbers if n not in range(1, 7)]
  if bad:
    raise argparse.ArgumentTypeError(f"the paper has Tables 1-6, not {bad}")
  return numbers


def main(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--results", help="results.jsonl of a sweep")
  p.add_argument(
    "--compare",
    action="append",
    default=[],
    metavar="NAME=RESULTS",
    help="instead of --results, repeated: the same grid from several bases, cell by cell",
  )
  p.add_argument("--paper-table", type=_tables, default=None, help="N, N,M or all")
  p.add_argument("--with-paper", action="store_true", help="the paper's numbers under each row")
  p.add_argument("--out", default=None, help="--paper-table: write .md, .csv (and .png) here")
  p.add_argument("--plot", default=None, help="write a PNG of score vs rank here")
  args = p.parse_args(argv)
  if args.compare:
    pairs = [item.partition("=") for item in args.compare]
    bad = [
      item for item, (name, eq, path) in zip(args.compare, pairs) if not (name and eq and path)
    ]
    if bad:
      p.error(f"--compare takes NAME=RESULTS, got {bad}")
    print(tables.compare_bases({name: tables.load(path) for name, _, path in pairs}))
    return
  if not args.results:
    p.error("give --results (or --compare NAME=RESULTS ...)")
  records = tables.load(args.results)
  if args.paper_table is None:
    print(tables.table(records))
    if args.plot:
      tables.plot(records, args.plot)
      print(f"\nplot: {args.plot}")
    return
  from adalink.experiments import paper_tables

  if args.out:
    os.makedirs(args.out, exist_ok=True)
  for number in args.paper_table:
    table = paper_tables.paper_table(number, records, args.with_paper)
    print(table.markdown() + "\n")
    if args.out:
      base = os.path.join(args.out, f"TABLE_{number}")
      with open(base + ".md", "w") as f:
        f.write(table.markdown() + "\n")
      with open(base + ".csv", "w") as f:
        f.write(table.csv())
      if number in (2, 6):
        paper_tables.plot_rank(number, records, base + ".png", args.with_paper)
  if args.out:
    print(f"written: {args.out}")


if __name__ == "__main__":
  cli.run(main)
