"""The benchmark harness as a whole: a measurement runs in a child of the framework's server and
reports what the step trained; a failed measurement surfaces its traceback; a run whose
measurements are all cached writes the report, JSON and chart without measuring anything."""

import dataclasses
import json

import numpy as np
import pytest

from adalink.bench import server
from adalink.bench.options import TRAIN_METHODS, BenchmarkOptions, infer_order, label
from adalink.bench.run import BenchmarkRun, run_benchmark
from adalink.models import t5

TINY = BenchmarkOptions(size="tiny", batch=2, input_len=8, target_len=4, steps=2, warmup=0)


@pytest.fixture(scope="module")
def workers():
  w = server.Workers()
  yield w
  w.close()


def test_jax_measurement_runs_in_the_server(workers):
  spec = {
    "job": "train",
    "framework": "jax",
    "method": "adalink",
    "rank": 2,
    "options": dataclasses.asdict(TINY),
  }
  out = workers.run(spec)
  d = t5.get_config("tiny").d_model
  assert out["trainable_params"] == 2 * d * 2  # down [d, 2] and up [2, d]
  assert out["total_params"] > 100 * out["trainable_params"]
  assert len(out["step_times"]) == 2 and out["step_s"] > 0 and out["compile_s"] > 0
  assert out["peak_kind"] in ("rss", "device") and out["peak_bytes"] > 0
  assert out["worker_wall_s"] >= out["compile_s"]


def test_failed_measurement_reports_its_traceback(workers):
  # The same server as above: it keeps serving after a measurement.
  spec = {"job": "train", "framework": "jax", "method": "nope", "rank": None}
  with pytest.raises(
    RuntimeError, match="(?s)measurement jax train nope failed.*unknown method .nope."
  ):
    workers.run({**spec, "options": dataclasses.asdict(TINY)})


def _train_measurement(rs, trainable):
  times = list(0.01 + 0.001 * rs.random_sample(5))
  return {
    "compile_s": 1.0,
    "step_s": float(np.median(times)),
    "step_times": times,
    "trainable_params": trainable,
    "total_params": 10_000,
    "opt_state_bytes": 4 * trainable,
    "peak_bytes": 2**20,
    "peak_kind": "rss",
    "device": "cpu",
  }


def _infer_measurement(rs, options):
  out = {"worker_wall_s": 1.0}
  for name in infer_order(options.base_repeats):
    enc, dec = list(0.002 + 1e-4 * rs.random_sample(5)), list(0.01 + 1e-4 * rs.random_sample(5))
    out[name] = {
      "encode_s": float(np.median(enc)),
      "decode8_s": float(np.median(dec)),
      "encode_times": enc,
      "decode8_times": dec,
    }
  return out


def test_fully_cached_run_reports_without_measuring(tmp_path):
  options = dataclasses.replace(TINY, steps=5)
  width = t5.get_config("tiny").d_model
  rs = np.random.RandomState(0)
  cache = {}
  for method, rank in TRAIN_METHODS:
    if rank is None or rank <= width:
      for fw in ("jax", "torch"):
        cache[f"tiny/train/{fw}/{method}/{rank}"] = _train_measurement(rs, 100 * (rank or 1))
  for fw in ("jax", "torch"):
    cache[f"tiny/infer/{fw}"] = _infer_measurement(rs, options)
  path = tmp_path / "cache.json"
  path.write_text(json.dumps(cache))
  out = str(tmp_path / "bench")
  run = BenchmarkRun(options, sizes=["tiny"], out=out, cache=str(path), jobs=["train"])
  text = run_benchmark(run, log=lambda _: None)

  assert (tmp_path / "bench.md").read_text() == text + "\n"
  assert "measurements from the cache not included: " + str(len(cache)) in text
  for method, rank in TRAIN_METHODS:
    if rank is None or rank <= width:
      assert (
        f"| {label(method, rank)} | jax |" in text and f"| {label(method, rank)} | torch |" in text
      )
  assert "| AdaLink r=64 | jax |" not in text  # rank > d_model of the tiny size: skipped
  assert "JAX / PyTorch train-step time ratio" in text and "folded/base" in text
  assert "Optimiser state at T5 base dims" in text
  record = json.loads((tmp_path / "bench.json").read_text())
  assert record["args"]["sizes"] == ["tiny"] and record["args"]["steps"] == 5
  assert [row["label"] for row in record["results"]["tiny"]["train"]][0] == "FT"
  assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_measurement_of_an_excluded_job_is_refused(tmp_path):
  path = tmp_path / "cache.json"
  path.write_text("{}")
  run = BenchmarkRun(TINY, sizes=["tiny"], out=str(tmp_path / "b"), cache=str(path), jobs=["infer"])
  with pytest.raises(ValueError, match="no cached result for tiny/train/jax/ft/None"):
    run_benchmark(run, log=lambda _: None)


def test_options_are_checked():
  with pytest.raises(ValueError, match="BenchmarkOptions.dtype must be one of"):
    BenchmarkOptions(dtype="float16")
  with pytest.raises(ValueError, match="BenchmarkOptions.batch must be a positive integer, got 0"):
    BenchmarkOptions(batch=0)
  with pytest.raises(ValueError, match="frameworks: 'mxnet' is not one of"):
    BenchmarkRun(frameworks=["mxnet"])
