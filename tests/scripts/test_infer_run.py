"""Decoding with what was trained: `infer.py --run` gives exactly the predictions `eval.py` scored
(AdaLink, per-task AdaLink, LoRA, prompt tuning), folded AdaLink equals the module, and an adapter
exported from a run and loaded onto a freshly built base gives the run's logits."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adalink.experiments import export as export_lib
from adalink.experiments import run_eval, serve
from adalink.train import trainer
from configs import glue as glue_configs
from tests.conftest import REPO_ROOT
from tests.overrides import apply_overrides

# Plain AdaLink is the per-task run with one task; its folding is pinned in tests/peft/test_serving.py
# and all four smoke runs are checked end to end by benchmarks/serving_acceptance.sh.
RUNS = {
  "adalink_per_task": {"data.tasks": ("sst2", "cola"), "method.per_task": True, "data.pack": False},
  "lora": {"method": "lora"},
  "pt": {"method": "pt"},
}


def _config(name):
  overrides = dict(RUNS[name])
  method = overrides.pop("method", None)
  config = glue_configs.get_config("smoke" + (f",method={method}" if method else ""))
  config.train.quiet = True
  config.train.num_steps = 20
  config.train.checkpoint_every = 20
  # No evaluation inside the run: the one compared below is eval.py's, after it.
  config.eval.enabled = False
  return apply_overrides(config, overrides)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """name -> (run dir, the examples eval.py decoded, as written by --predictions)."""
  root = tmp_path_factory.mktemp("runs")
  out = {}
  for name in RUNS:
    workdir = str(root / name)
    trainer.train_and_evaluate(_config(name), workdir)
    path = str(root / f"{name}.jsonl")
    run_eval.evaluate_run(workdir, predictions_path=path)
    out[name] = (workdir, [json.loads(line) for line in open(path)])
  return out


@pytest.mark.parametrize("name", list(RUNS))
def test_infer_with_a_run_gives_the_predictions_eval_scored(runs, name):
  workdir, scored = runs[name]
  assert len(scored) >= 20 and {r["set"] for r in scored} == set(_config(name).data.tasks)
  trained = serve.from_run(workdir)
  inputs, sets = [r["inputs"] for r in scored], [r["set"] for r in scored]
  served = serve.decode(trained, inputs, tasks=sets)
  assert served == [r["prediction"] for r in scored]
  if name.startswith("adalink"):
    assert serve.decode(trained, inputs, tasks=sets, fold=False) == served


def test_the_script_prints_one_output_per_input(runs, tmp_path):
  workdir, scored = runs["adalink_per_task"]
  rows = [r for r in scored if r["set"] == "cola"][:3]
  inputs = tmp_path / "inputs.txt"
  inputs.write_text("".join(r["inputs"] + "\n" for r in rows))
  script = os.path.join(REPO_ROOT, "scripts", "infer.py")
  proc = subprocess.run(
    [
      sys.executable,
      script,
      f"--run={workdir}",
      "--task=cola",
      f"--input-file={inputs}",
      "--jsonl",
    ],
    capture_output=True,
    text=True,
    timeout=600,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert [json.loads(line) for line in proc.stdout.splitlines()] == [r["prediction"] for r in rows]


def test_a_task_the_run_was_not_trained_on_is_refused(runs):
  trained = serve.from_run(runs["adalink_per_task"][0])
  with pytest.raises(ValueError, match="--task 'rte': .* was trained on \\['cola', 'sst2'\\]"):
    serve.decode(trained, ["x"], tasks="rte")
  with pytest.raises(ValueError, match="one adapter per task \\(\\['cola', 'sst2'\\]\\)"):
    serve.decode(trained, ["x"])


@pytest.mark.parametrize("name", ["adalink_per_task", "lora"])
def test_exported_adapter_on_a_fresh_base_gives_the_runs_logits(runs, name, tmp_path):
  workdir, scored = runs[name]
  options = export_lib.ExportOptions(workdir=workdir, adapter=str(tmp_path / "adapter"))
  written = export_lib.export(options, log=lambda line: None)["adapter"]
  assert ("folded" in written) == name.startswith("adalink")
  with pytest.raises(FileExistsError, match="adapter.safetensors exists"):
    export_lib.export(options, log=lambda line: None)
  from_run = serve.from_run(workdir)
  loaded = serve.from_adapter(str(tmp_path / "adapter"))  # the base rebuilt from its record
  tokens = serve.tokenize(from_run, [r["inputs"] for r in scored[:8]])
  features = {}
  if from_run.num_tasks > 1:
    features["task_id"] = jnp.asarray([from_run.tasks[r["set"]] for r in scored[:8]], jnp.int32)
  decoder_inputs = jnp.zeros((8, 3), jnp.int32)
  logits = [
    t.model.apply(t.variables, tokens, decoder_inputs, **features) for t in (from_run, loaded)
  ]
  np.testing.assert_array_equal(np.asarray(logits[0]), np.asarray(logits[1]))
  assert loaded.tasks == from_run.tasks and loaded.settings == from_run.settings
  inputs, sets = [r["inputs"] for r in scored], [r["set"] for r in scored]
  assert serve.decode(loaded, inputs, tasks=sets) == [r["prediction"] for r in scored]
  # Loaded onto another base of the same shape: refused, unless asked for.
  other = str(tmp_path / "other")
  _write_random_base(from_run.model.config, other)
  with pytest.raises(ValueError, match="base.fingerprint .* differs"):
    serve.from_adapter(str(tmp_path / "adapter"), checkpoint=other)
  serve.from_adapter(str(tmp_path / "adapter"), checkpoint=other, allow_different_base=True)


def _write_random_base(config, directory):
  from adalink.convert import hf_t5
  from adalink.models import t5

  params = t5.init_params(config, jax.random.PRNGKey(123))
  hf_t5.save_hf_t5(config, jax.tree_util.tree_map(np.asarray, params), directory)


def test_full_fine_tuning_has_no_adapter_file(tmp_path):
  config = glue_configs.get_config("smoke,method=ft")
  config.train.quiet = True
  config.train.num_steps = 2
  config.train.checkpoint_every = 2
  config.eval.enabled = False
  trainer.train_and_evaluate(config, str(tmp_path / "ft"))
  with pytest.raises(ValueError, match="method 'ft' trains every weight"):
    serve.export_adapter(str(tmp_path / "ft"), str(tmp_path / "adapter"))
  assert not os.path.exists(tmp_path / "adapter")
