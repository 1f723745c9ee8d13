#!/usr/bin/env python
r"""Compile time and step time, unrolled vs scanned layers, for each remat policy.

  python scripts/compile_time.py --sizes t5_1_1_base,t5_1_1_large --policies none,full
  python scripts/compile_time.py --sizes tiny --steps 1          # a quick check

Prints one markdown row per (size, layout, policy) as it finishes, then the table
(`adalink.bench.compile_time`: FT loss and gradients of every weight, random weights, no TF).
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
  p.add_argument("--sizes", default="t5_1_1_base,t5_1_1_large", help="comma-separated T5 sizes")
  p.add_argument("--policies", default="none,full", help="comma-separated remat policies")
  p.add_argument("--batch", type=int, default=2)
  p.add_argument("--input-len", type=int, default=64)
  p.add_argument("--target-len", type=int, default=16)
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  args = p.parse_args(argv)
  from adalink.bench import compile_time
  from adalink.models import layer_stack

  policies = args.policies.split(",")
  for policy in policies:
    layer_stack.check_remat(policy, "--policies")
  print(compile_time.HEADER, flush=True)
  rows = compile_time.run(
    args.sizes.split(","),
    policies,
    log=lambda line: print(line, flush=True),
    batch=args.batch,
    inputs=args.input_len,
    targets=args.target_len,
    steps=args.steps,
    dtype=args.dtype,
  )
  print()
  print(compile_time.table(rows))


if __name__ == "__main__":
  cli.run(main)
