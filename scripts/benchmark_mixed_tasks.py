#!/usr/bin/env python
"""Benchmark a batch that mixes tasks: folded per-task AdaLink vs the base vs PEFT's mixed LoRA.

  python scripts/benchmark_mixed_tasks.py --size small --batch 8 --input-len 128 --tasks 4

Prints a markdown table (median ms per batch, ratio to the framework's base); --output also
writes the per-round times as JSON. The work is `adalink.bench.mixed_tasks`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402
from adalink.bench import mixed_tasks  # noqa: E402
from adalink.bench.options import BenchmarkOptions  # noqa: E402


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument("--size", default="small")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--input-len", type=int, default=128)
  p.add_argument("--tasks", type=int, default=4)
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--no-torch", action="store_true", help="skip the PyTorch / PEFT rows")
  p.add_argument("--output", help="write the per-round times here (JSON)")
  a = p.parse_args(argv)
  options = BenchmarkOptions(size=a.size, batch=a.batch, input_len=a.input_len, steps=a.steps)
  result = mixed_tasks.run(options, a.tasks, torch_side=not a.no_torch)
  print(result["table"])
  if a.output:
    with open(a.output, "w") as f:
      json.dump(result["times"], f)


if __name__ == "__main__":
  cli.run(main)
