#!/usr/bin/env python
r"""Where a train step's time goes: a jax.profiler trace of a few steps, summarised per XLA op.

  python scripts/profile_step.py --method ft                    # T5-small dims, the benchmark's shapes
  python scripts/profile_step.py --method adalink --rank 4 --top 25 --trace-dir /tmp/prof

Builds the same step as scripts/benchmark.py (random weights, Adafactor, dropout 0.1), runs it
under `jax.profiler.trace`, and prints the ops that executed on the device or, on CPU, on XLA's
thread pool: total time per op kind and the heaviest ops, and on CPU how busy XLA's worker threads
were (`adalink.bench.profile`). Needs no TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402
from adalink.bench.options import DTYPES, BenchmarkOptions  # noqa: E402


def main(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--method", default="ft", choices=["ft", "lora", "pt", "adalink"])
  p.add_argument("--rank", type=int, default=4)
  p.add_argument("--size", default="small")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--input-len", type=int, default=128)
  p.add_argument("--target-len", type=int, default=8)
  p.add_argument("--prompts", type=int, default=64)
  p.add_argument("--dtype", default="float32", choices=DTYPES)
  p.add_argument("--steps", type=int, default=3, help="steps traced")
  p.add_argument("--top", type=int, default=20)
  p.add_argument("--trace-dir", default=None, help="keep the trace here (default: a temp dir)")
  args = p.parse_args(argv)
  from adalink.bench import profile

  options = BenchmarkOptions(
    size=args.size,
    batch=args.batch,
    input_len=args.input_len,
    target_len=args.target_len,
    prompts=args.prompts,
    dtype=args.dtype,
    steps=args.steps,
    warmup=1,
  )
  rank = None if args.method in ("ft", "pt") else args.rank
  print(profile.profile_step(options, args.method, rank, args.top, args.trace_dir))


if __name__ == "__main__":
  cli.run(main)
