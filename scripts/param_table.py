#!/usr/bin/env python
"""Trainable-parameter counts per method and model size, from shapes alone (nothing allocated).

  python scripts/param_table.py                       # the paper's configurations and defaults
  python scripts/param_table.py --sizes base t5_11b --adalink-ranks 4 256 1024

Counts come from `jax.eval_shape` of the real model init, so an 11B model costs no memory. Prompt
tuning lists the prompt (n x d, what the paper counts) and its training-only reparameterisation
network apart (`adalink.experiments.param_table`).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402


def main(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--sizes", nargs="+", default=["t5_11b", "xxl", "base"])
  p.add_argument("--adalink-ranks", nargs="+", type=int, default=[4, 256, 1024])
  p.add_argument("--lora-ranks", nargs="+", type=int, default=[4, 16])
  p.add_argument("--prompts", type=int, default=64)
  p.add_argument("--reparam-hidden", type=int, default=512)
  args = p.parse_args(argv)
  from adalink.experiments import param_table

  print(param_table.table(**vars(args)))


if __name__ == "__main__":
  cli.run(main)
