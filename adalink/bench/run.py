"""The whole benchmark: every method's training cost and the inference variants, in both
frameworks, for each size; resumable from a cache of finished measurements, so a long run can be
split (e.g. `jobs=("train",)` now, `("infer",)` later) or survive an interruption."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Callable, Optional, Sequence

from adalink.bench import report as report_lib
from adalink.bench.options import TRAIN_METHODS, BenchmarkOptions, label
from adalink.bench.server import FRAMEWORKS, Workers
from adalink.models import t5

JOBS = ("train", "infer")


@dataclasses.dataclass
class BenchmarkRun:
  """What to measure (`options`, its size replaced by each of `sizes`) and where results go."""

  options: BenchmarkOptions = dataclasses.field(default_factory=BenchmarkOptions)
  sizes: Sequence[str] = ("small",)
  frameworks: Sequence[str] = FRAMEWORKS
  out: str = "benchmark"  # prefix of OUT.md, OUT.json and OUT.png
  cache: Optional[str] = (
    None  # JSON of finished measurements: read to skip them, written after each
  )
  jobs: Sequence[str] = JOBS  # which measurements to run now (the report needs both)

  def __post_init__(self):
    for fw in self.frameworks:
      if fw not in FRAMEWORKS:
        raise ValueError(f"frameworks: {fw!r} is not one of {FRAMEWORKS}")
    for job in self.jobs:
      if job not in JOBS:
        raise ValueError(f"jobs: {job!r} is not one of {JOBS}")

  def record(self) -> dict:
    """The run's settings as written to OUT.json."""
    o = dataclasses.asdict(self.options)
    o.pop("size")
    return {
      "sizes": list(self.sizes),
      **o,
      "frameworks": list(self.frameworks),
      "out": self.out,
      "cache": self.cache,
      "jobs": list(self.jobs),
    }


def _stderr(text: str) -> None:
  print(text, file=sys.stderr, flush=True)


def run_benchmark(run: BenchmarkRun, log: Callable[[str], None] = _stderr) -> Optional[str]:
  """Measures what `run` asks for and writes OUT.md, OUT.json and OUT.png; -> the Markdown
  report, or None when `run.jobs` left measurements the report needs for a later call."""
  run_start = time.perf_counter()
  if run.options.steps < 20:
    log(f"note: steps {run.options.steps} < 20; medians are noisier")
  cache = {}
  if run.cache:
    os.makedirs(os.path.dirname(os.path.abspath(run.cache)), exist_ok=True)
    if os.path.exists(run.cache):
      with open(run.cache) as f:
        cache = json.load(f)
  fresh = set()
  workers = Workers()

  def measured(key, spec):
    if key not in cache:
      if spec["job"] not in run.jobs:
        raise ValueError(f"no cached result for {key} and jobs excludes {spec['job']!r}")
      cache[key] = workers.run(spec)
      fresh.add(key)
      if run.cache:  # after every measurement, so an interrupted run keeps what it finished
        with open(run.cache, "w") as f:
          json.dump(cache, f)
    return cache[key]

  results = {}
  try:
    for size in run.sizes:
      options = dataclasses.asdict(dataclasses.replace(run.options, size=size))
      width = t5.get_config(size).d_model
      train = []
      for method, rank in TRAIN_METHODS:
        if rank is not None and rank > width:
          log(f"[{size}] skipping {label(method, rank)}: rank > d_model {width}")
          continue
        row = {"label": label(method, rank)}
        for fw in run.frameworks:
          log(f"[{size}] train {row['label']} ({fw})")
          row[fw] = measured(
            f"{size}/train/{fw}/{method}/{rank}",
            {"job": "train", "framework": fw, "method": method, "rank": rank, "options": options},
          )
        train.append(row)
      infer = {}
      for fw in run.frameworks:
        log(f"[{size}] inference ({fw})")
        infer[fw] = measured(
          f"{size}/infer/{fw}", {"job": "infer", "framework": fw, "options": options}
        )
      results[size] = {"train": train, "infer": infer}
  finally:
    workers.close()
  if set(run.jobs) != set(JOBS) and not all(
    f"{size}/infer/{fw}" in cache for size in run.sizes for fw in run.frameworks
  ):
    log(f"measurements cached in {run.cache}; run again with jobs infer for the report")
    return None
  text = (
    report_lib.report(results, run.options)
    + "\n"
    + report_lib.state_table("base")
    + "\n\n"
    + f"Whole run: {time.perf_counter() - run_start:.0f} s of wall time "
    + f"(measurements from the cache not included: {len(cache) - len(fresh)} cached).\n"
  )
  os.makedirs(os.path.dirname(os.path.abspath(run.out)), exist_ok=True)
  with open(run.out + ".md", "w") as f:
    f.write(text + "\n")
  with open(run.out + ".json", "w") as f:
    json.dump({"args": run.record(), "results": results}, f, indent=1)
  report_lib.chart(results, run.out + ".png")
  return text
