#!/usr/bin/env python
r"""A run's validation curve (loss and token accuracy against input tokens seen) as Markdown + PNG.

python scripts/plot_curve.py --workdir=/tmp/pt_nano --tokens_per_step=8192 --out=/tmp/curve
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402


def main(argv):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--workdir", required=True, help="run directory (its metrics.jsonl)")
  p.add_argument("--tokens_per_step", type=int, required=True, help="batch size x inputs length")
  p.add_argument("--out", required=True, help="output prefix: OUT.md and OUT.png")
  p.add_argument("--title", default="pretraining")
  args = p.parse_args(argv)
  from adalink.experiments import curves

  path = os.path.join(args.workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"--workdir {args.workdir}: no metrics.jsonl")
  rows = curves.read_curve(path, args.tokens_per_step)
  with open(args.out + ".md", "w") as f:
    f.write(curves.markdown(rows))
  curves.plot(rows, args.out + ".png", args.title)
  print(curves.markdown(rows), end="")


if __name__ == "__main__":
  cli.run(main)
