#!/usr/bin/env python
r"""Cost of each method, measured side by side with Hugging Face transformers + peft (PyTorch).

  python scripts/benchmark.py                                 # T5-small dims, CPU defaults
  python scripts/benchmark.py --sizes small base --batch 32 --dtype bfloat16 --out benchmarks/h100

For every method (FT, LoRA r4/r16, PT 64, AdaLink r4/r64) and framework (this codebase in JAX, and
transformers + peft in PyTorch, with AdaLink written there as a small input-embedding module):
the median train-step time over >= 20 steps after warm-up (compile time reported apart), examples
per second, trainable parameters, optimiser-state bytes, peak memory (device memory stats on an
accelerator, the process's peak RSS on CPU, so every train measurement runs in its own process),
and on accelerators the model FLOP utilisation 6 * params * tokens / time / peak (the peak used is
printed). Then inference for the base model, AdaLink as a module, AdaLink folded into the
vocabulary table, LoRA unmerged and merged, and PT: the encoder forward and, on its output, the
8-step greedy decoder loop (EOS disabled, so every variant does the same work), timed in shuffled
rounds; a second build of the base runs in every round, so the folded/base ratio can be read
against the run's own noise.

Weights are random: cost does not depend on their values. Both frameworks use Adafactor with a
fixed learning rate and dropout 0.1. Outputs: a Markdown table (stdout and OUT.md), OUT.json and a
bar chart OUT.png. Needs no TensorFlow, so it runs on accelerator machines that lack it. The
harness is `adalink.bench` (`run.run_benchmark`).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402
from adalink.bench.options import DTYPES, BenchmarkOptions  # noqa: E402
from adalink.bench.run import JOBS, BenchmarkRun, run_benchmark  # noqa: E402
from adalink.bench.server import FRAMEWORKS  # noqa: E402


def parse_args(argv=None) -> BenchmarkRun:
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  d = BenchmarkOptions()
  p.add_argument("--sizes", nargs="+", default=["small"])
  p.add_argument("--batch", type=int, default=d.batch)
  p.add_argument("--input-len", type=int, default=d.input_len)
  p.add_argument("--target-len", type=int, default=d.target_len)
  p.add_argument("--prompts", type=int, default=d.prompts)
  p.add_argument("--steps", type=int, default=d.steps, help="timed steps (the median is reported)")
  p.add_argument("--warmup", type=int, default=d.warmup)
  p.add_argument(
    "--base-repeats",
    type=int,
    default=d.base_repeats,
    help="times the base runs in each inference round (its spread is the noise)",
  )
  p.add_argument("--dtype", default=d.dtype, choices=DTYPES)
  p.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
  p.add_argument("--out", default="benchmark", help="output prefix for .md, .json and .png")
  p.add_argument(
    "--cache",
    default=None,
    help="JSON file of finished measurements: read to skip them, written after each",
  )
  p.add_argument(
    "--jobs",
    nargs="+",
    default=list(JOBS),
    choices=JOBS,
    help="which measurements to run now (the report needs both, from here or --cache)",
  )
  a = p.parse_args(argv)
  try:
    options = BenchmarkOptions(
      batch=a.batch,
      input_len=a.input_len,
      target_len=a.target_len,
      prompts=a.prompts,
      steps=a.steps,
      warmup=a.warmup,
      base_repeats=a.base_repeats,
      dtype=a.dtype,
    )
  except ValueError as e:
    p.error(str(e))
  return BenchmarkRun(options, a.sizes, a.frameworks, a.out, a.cache, a.jobs)


def main(argv=None):
  text = run_benchmark(parse_args(argv))
  if text is not None:
    print(text)


if __name__ == "__main__":
  cli.run(main)
