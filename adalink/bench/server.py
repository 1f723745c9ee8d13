"""One measurement server per framework: imports the framework once, then runs each measurement
in a child forked from it. `Workers` starts them (`python -m adalink.bench.server FRAMEWORK`) and
sends them specs as JSON lines.

A fresh child per measurement keeps each method's peak memory its own (what a new process would
report) and starts it from a clean state; forking from a process that has done the imports, but
started no runtime (no JAX backend, no torch thread pool), saves the seconds of importing that a
new interpreter per measurement would pay.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from typing import Any, Dict

from adalink.bench import timing
from adalink.bench.options import BenchmarkOptions

FRAMEWORKS = ("jax", "torch")
PRELOAD = {
  "jax": [
    "jax",
    "flax.linen",
    "optax",
    "numpy",
    "adalink.models.t5",
    "adalink.peft.methods",
    "adalink.peft.adalink",
    "adalink.peft.lora",
    "adalink.train.step",
    "adalink.train.decoding",
    "adalink.bench.jax_side",
  ],
  "torch": [
    "torch",
    "numpy",
    "transformers",
    "transformers.models.t5.modeling_t5",
    "transformers.optimization",
    "peft",
    "adalink.bench.torch_side",
  ],
}
# The folder holding the adalink package, so the servers import it without an installed copy.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(spec: Dict[str, Any]) -> Dict[str, Any]:
  """One measurement: {"job": train|infer, "framework", "method", "rank", "options"}."""
  options = BenchmarkOptions(**spec["options"])
  side = importlib.import_module(f"adalink.bench.{spec['framework']}_side")
  if spec["job"] == "train":
    return getattr(side, f"{spec['framework']}_train")(options, spec["method"], spec["rank"])
  return getattr(side, f"{spec['framework']}_infer")(options)


def serve(framework: str, stdin=None, stdout=None) -> None:
  """Imports one framework, then runs each measurement read from stdin (a JSON spec per line) in
  a child forked from here, and writes its result back as one JSON line."""
  if framework not in FRAMEWORKS:
    raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
  stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
  for name in PRELOAD[framework]:
    importlib.import_module(name)
  for line in stdin:
    spec = json.loads(line)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
      os.close(read_fd)
      try:
        timing.reset_peak_rss()
        payload = json.dumps(measure(spec))
      except BaseException:  # report everything, the parent decides; never return into the loop
        payload = json.dumps({"error": traceback.format_exc()})
      with os.fdopen(write_fd, "w") as f:
        f.write(payload)
      os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
      payload = f.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
      payload = json.dumps(
        {"error": f"measurement process died (wait status {status}); out of memory?"}
      )
    print(payload, file=stdout, flush=True)


class Workers:
  """One `serve` process per framework, started when first needed."""

  def __init__(self):
    self.procs: Dict[str, subprocess.Popen] = {}

  def run(self, spec: Dict[str, Any]) -> Dict[str, Any]:
    fw = spec["framework"]
    if fw not in self.procs:
      env = dict(os.environ)
      env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
      self.procs[fw] = subprocess.Popen(
        [sys.executable, "-m", "adalink.bench.server", fw],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
      )
    proc = self.procs[fw]
    start = time.perf_counter()
    proc.stdin.write(json.dumps(spec) + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
      raise RuntimeError(
        f"benchmark server for {fw} exited (code {proc.wait()}) while running "
        f"{spec['job']} {spec.get('method')}"
      )
    out = json.loads(line)
    if "error" in out:
      raise RuntimeError(
        f"benchmark measurement {fw} {spec['job']} {spec.get('method')} "
        f"failed:\n{out['error'][-4000:]}"
      )
    out["worker_wall_s"] = time.perf_counter() - start  # build, compile and timing, no imports
    return out

  def close(self) -> None:
    for proc in self.procs.values():
      proc.stdin.close()
      proc.wait()


if __name__ == "__main__":
  serve(sys.argv[1])
