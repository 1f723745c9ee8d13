"""Where a train step's time goes: a jax.profiler trace of a few of the benchmark's steps (random
weights, Adafactor, dropout 0.1), summarised per XLA op from the XSpace the profiler wrote
(`jax.profiler.ProfileData`, so no TensorBoard is needed): time per op kind (matmul, fusion,
scatter, copy/transpose, ...), the heaviest ops, and on CPU how busy XLA's worker threads were."""

from __future__ import annotations

import collections
import glob
import os
import re
import tempfile
from typing import Optional

from adalink.bench.options import BenchmarkOptions

# (substring of the HLO name, kind), first match wins.
_KINDS = (
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
)
# Runtime bookkeeping that wraps or waits on the ops rather than being one.
_NOT_OPS = ("ThunkExecutor", "SlinkyThreadPool", "end:", "ThreadpoolListener")


def op_kind(name: str) -> str:
  """A coarse class for an XLA op from its HLO name."""
  base = re.sub(r"\.\d+$", "", name).lower()
  for key, kind in _KINDS:
    if key in base:
      return kind
  return "other"


def summarise(trace_dir: str, steps: int, top: int) -> str:
  """Markdown tables of the newest trace under `trace_dir`, per step of `steps` traced."""
  import jax

  files = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
  if not files:
    raise FileNotFoundError(f"no *.xplane.pb under {trace_dir}: the profiler wrote nothing")
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
    lines = sorted({f"{p.name}: {line.name}" for p in data.planes for line in p.lines})
    raise ValueError(
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


def profile_step(
  options: BenchmarkOptions,
  method: str,
  rank: Optional[int],
  top: int = 20,
  trace_dir: Optional[str] = None,
) -> str:
  """Traces `options.steps` train steps of `method` after one untraced step; -> a header line
  and the summary tables."""
  import jax

  from adalink.bench import jax_side

  one = jax_side.jax_train_step(options, method, rank)["run_one"]
  one().block_until_ready()  # compile and warm up outside the trace
  trace_dir = trace_dir or tempfile.mkdtemp(prefix="adalink_profile_")
  with jax.profiler.trace(trace_dir):
    for _ in range(options.steps):
      one().block_until_ready()
  o = options
  return (
    f"trace: {trace_dir}  ({method}, T5 {o.size}, batch {o.batch}, input {o.input_len}, target "
    f"{o.target_len}, {o.dtype}, {jax.devices()[0].device_kind})\n"
    + summarise(trace_dir, o.steps, top)
  )
