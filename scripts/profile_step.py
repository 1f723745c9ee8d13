#!/usr/bin/env python
r"""Where a train step's time goes: a jax.profiler trace of a few steps, summarised per XLA op.

  python scripts/profile_step.py --method ft                    # T5-small dims, the benchmark's shapes
  python scripts/profile_step.py --method adalink --rank 4 --top 25 --trace-dir /tmp/prof

Builds the same step as scripts/benchmark.py (random weights, Adafactor, dropout 0.1), runs it
under `jax.profiler.trace`, reads the XSpace the profiler wrote (`jax.profiler.ProfileData`, so no
TensorBoard is needed) and prints the ops that executed on the device or, on CPU, on XLA's
thread pool: total time per op kind (matmul, fusion, scatter, copy/transpose, ...) and the
heaviest ops, and on CPU how busy XLA's worker threads were. Needs no TensorFlow.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)


def op_kind(name: str) -> str:
  """A coarse class for an XLA op from its HLO name."""
  base = re.sub(r"\.\d+$", "", name).lower()
  for key, kind in (
    ("ynn_fusion", "matmul (YNNPACK fusion)"),
    ("onednn", "matmul (oneDNN)"),
    ("gemm", "matmul (cuBLAS)"),
    ("dot", "matmul (dot)"),
    ("convolution", "matmul (dot)"),
    ("transpose", "copy/transpose"),
    ("copy", "copy/transpose"),
    ("scatter", "scatter"),
    ("gather", "gather"),
    ("reduce", "reduction"),
    ("rng", "random bits"),
    ("threefry", "random bits"),
    ("while", "control flow"),
    ("conditional", "control flow"),
    ("fusion", "other fused elementwise"),
    ("wrapped_", "other fused elementwise"),
  ):
    if key in base:
      return kind
  return "other"


# Runtime bookkeeping that wraps or waits on the ops rather than being one.
_NOT_OPS = ("ThunkExecutor", "SlinkyThreadPool", "end:", "ThreadpoolListener")


def summarise(trace_dir: str, steps: int, top: int) -> str:
  import jax

  files = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
  if not files:
    raise SystemExit(f"no *.xplane.pb under {trace_dir}: the profiler wrote nothing")
  data = jax.profiler.ProfileData.from_file(max(files, key=os.path.getmtime))
  per_op, count, kinds = collections.Counter(), collections.Counter(), collections.Counter()
  busy = []  # per CPU worker thread: (time inside XLA's executor, span of the trace)
  for plane in data.planes:
    for line in plane.lines:
      on_device = plane.name.startswith("/device:") and line.name == "XLA Ops"
      on_cpu_pool = plane.name == "/host:CPU" and "XLAEigen" in line.name
      if not (on_device or on_cpu_pool):
        continue
      events = list(line.events)
      if on_cpu_pool and events:
        inside = sum(e.duration_ns for e in events if e.name == "ThunkExecutor::Execute")
        span = max(e.end_ns for e in events) - min(e.start_ns for e in events)
        busy.append((inside, span))
      for ev in events:
        if ev.name.startswith(_NOT_OPS):
          continue
        name = re.sub(r"\.\d+$", "", ev.name)
        per_op[name] += ev.duration_ns
        count[name] += 1
        kinds[op_kind(ev.name)] += ev.duration_ns
  total = sum(per_op.values())
  if not total:
    lines = sorted({f"{p.name}: {l.name}" for p in data.planes for l in p.lines})
    raise SystemExit(
      "found no XLA op events; planes and lines in the trace:\n  " + "\n  ".join(lines)
    )
  out = [
    f"XLA op time per step, summed over {'threads' if busy else 'streams'}: "
    f"{total / steps / 1e6:.1f} ms ({steps} steps traced)"
  ]
  if busy:
    out.append(
      "CPU worker threads busy inside XLA's executor: "
      + ", ".join(f"{100 * inside / span:.0f}%" for inside, span in busy)
      + " of the traced time"
    )
  out += ["", "| op kind | ms / step | share |", "|---|---:|---:|"]
  for kind, ns in kinds.most_common():
    out.append(f"| {kind} | {ns / steps / 1e6:.1f} | {100 * ns / total:.1f}% |")
  out += [
    "",
    f"| top {top} ops (instances merged) | runs / step | ms / step | share |",
    "|---|---:|---:|---:|",
  ]
  for name, ns in per_op.most_common(top):
    out.append(
      f"| {name} | {count[name] / steps:.0f} | {ns / steps / 1e6:.2f} | {100 * ns / total:.1f}% |"
    )
  return "\n".join(out)


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
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  p.add_argument("--steps", type=int, default=3, help="steps traced")
  p.add_argument("--top", type=int, default=20)
  p.add_argument("--trace-dir", default=None, help="keep the trace here (default: a temp dir)")
  args = p.parse_args(argv)
  import jax
  import benchmark

  step_args = argparse.Namespace(
    size=args.size,
    batch=args.batch,
    input_len=args.input_len,
    target_len=args.target_len,
    prompts=args.prompts,
    dtype=args.dtype,
    steps=args.steps,
    warmup=1,
  )
  one = benchmark.jax_train_step(
    step_args, args.method, None if args.method in ("ft", "pt") else args.rank
  )["run_one"]
  one().block_until_ready()
  trace_dir = args.trace_dir or tempfile.mkdtemp(prefix="adalink_profile_")
  with jax.profiler.trace(trace_dir):
    for _ in range(args.steps):
      one().block_until_ready()
  print(
    f"trace: {trace_dir}  ({args.method}, T5 {args.size}, batch {args.batch}, input "
    f"{args.input_len}, target {args.target_len}, {args.dtype}, {jax.devices()[0].device_kind})"
  )
  print(summarise(trace_dir, args.steps, args.top))


if __name__ == "__main__":
  main()
