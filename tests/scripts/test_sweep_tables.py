"""Sweeps and tables (adalink.experiments.sweep and tables, behind scripts/sweep.py and
make_tables.py): the grid has one job per task x method x rank (unranked methods once), every job's
config builds, overrides keep the field's type, and results become the paper-shaped table."""

import json
import os
import shlex

import pytest

from adalink.experiments import sweep, tables
from configs import captioning as captioning_configs
from configs import glue as glue_configs


def test_grid_jobs_build_valid_glue_configs(tmp_path):
  jobs = sweep.grid_jobs("smoke", ["adalink", "lora", "pt"], [2, 8], ["sst2", "rte"], str(tmp_path))
  assert [(j.task, j.method, j.rank) for j in jobs] == [
    (task, m, r)
    for task in ("sst2", "rte")
    for m, r in (("adalink", 2), ("adalink", 8), ("lora", 2), ("lora", 8), ("pt", None))
  ]
  assert jobs[0].workdir == str(tmp_path / "sst2" / "adalink_r2")
  assert jobs[4].workdir == str(tmp_path / "sst2" / "pt")
  for job in jobs:
    config = glue_configs.get_config(job.arg)
    assert config.method.name == job.method and config.data.tasks == (job.task,)
    if job.rank:
      assert config.method.rank == job.rank


def test_variant_jobs_keep_unified_in_the_name_and_label_the_task(tmp_path):
  jobs = sweep.variant_jobs(["ft", "lora_r16", "unified_r128"], ["data=flickr8k"], str(tmp_path))
  assert [(j.task, j.method, j.rank, j.arg) for j in jobs] == [
    ("flickr8k", "ft", None, "ft,data=flickr8k"),
    ("flickr8k", "lora", 16, "lora_r16,data=flickr8k"),
    ("flickr8k", "adalink", 128, "unified_r128,data=flickr8k"),
  ]
  assert captioning_configs.get_config(jobs[2].arg).method.unified is True
  with pytest.raises(ValueError, match="variant 'lora-16' is not NAME or NAME_rRANK"):
    sweep.variant_jobs(["lora-16"], [], str(tmp_path))


def test_emitted_commands_run_the_train_script():
  jobs = sweep.grid_jobs("smoke", ["ft"], [4], ["sst2"], "/tmp/s w")
  (line,) = sweep.commands("configs/glue.py", jobs, ["train.num_steps=5"])
  assert shlex.split(line) == [
    "python",
    "scripts/train.py",
    "--config=configs/glue.py:smoke,method=ft,task=sst2",
    "--workdir=/tmp/s w/sst2/ft",
    "--config.train.num_steps=5",
  ]


def test_set_parses_to_the_fields_type():
  config = glue_configs.get_config("smoke")
  sweep.apply_set(config, "train.num_steps=7")
  sweep.apply_set(config, "eval.enabled=false")
  sweep.apply_set(config, "schedule.peak_lr=0.5")
  sweep.apply_set(config, 'data.tasks=["rte"]')
  assert config.train.num_steps == 7 and config.eval.enabled is False
  assert config.schedule.peak_lr == 0.5 and list(config.data.tasks) == ["rte"]
  for bad, message in (
    ("train.nope=1", "no such config field"),
    ("train.num_steps=x", "expected a int"),
    ("eval.enabled=yes", "expected true or false"),
    ("num_steps", "expected section.field=value"),
  ):
    with pytest.raises(ValueError, match=message):
      sweep.apply_set(config, bad)


def _record(task, method, rank, **metrics):
  return {
    "task": task,
    "method": method,
    "rank": rank,
    "trainable_params": 10 * (rank or 1),
    "first_loss": 2.0,
    "last_loss": 1.0,
    **metrics,
  }


def test_table_rows_methods_and_averages_task_scores(tmp_path):
  records = [
    _record("mrpc", "adalink", 4, **{"mrpc/accuracy": 80.0, "mrpc/f1": 90.0}),
    _record("rte", "adalink", 4, **{"rte/accuracy": 70.0, "rte/num_examples": 277.0}),
    _record("mrpc", "ft", None, **{"mrpc/accuracy": 60.0, "mrpc/f1": 70.0}),
    _record(
      "mnli", "ft", None, **{"mnli_matched/accuracy": 50.0, "mnli_mismatched/accuracy": 52.0}
    ),
  ]
  path = tmp_path / "results.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")
  loaded = tables.load(str(path))
  assert loaded == records
  # The paper's columns: MRPC accuracy (not its mean with F1), MNLI matched accuracy.
  assert tables.task_score(records[0]) == 80.0 and tables.task_score(records[3]) == 50.0
  lines = tables.table(loaded).splitlines()
  assert lines[0].startswith("| method | # params | mrpc | rte | mnli | avg |")
  assert lines[2].startswith("| FT | 10 | 60.0 | - | 50.0 | - |")  # no RTE run: no average
  assert lines[3].startswith("| AdaLink r=4 | 40 | 80.0 | 70.0 | - | - |")
  tables.plot(loaded, str(tmp_path / "rank.png"))
  assert (tmp_path / "rank.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_results_files_are_refused(tmp_path):
  empty = tmp_path / "empty.jsonl"
  empty.write_text("\n")
  with pytest.raises(ValueError, match="no results"):
    tables.load(str(empty))
  broken = tmp_path / "broken.jsonl"
  broken.write_text('{"task": "rte"}\n{oops\n')
  with pytest.raises(ValueError, match=r"broken\.jsonl:2: not a JSON line"):
    tables.load(str(broken))


def test_the_recorded_scores_are_the_best_checkpoints():
  from adalink.experiments import sweep

  evals = [
    {"kind": "eval", "step": 10, "average": 50.0, "sst2/accuracy": 50.0},
    {"kind": "eval", "step": 20, "average": 71.0, "sst2/accuracy": 71.0},
    {"kind": "eval", "step": 30, "average": float("nan")},
    {"kind": "eval", "step": 40, "average": 71.0, "sst2/accuracy": 71.0},
    {"kind": "eval", "step": 50, "average": 64.0, "sst2/accuracy": 64.0},
  ]
  assert sweep.best_eval(evals, "average")["step"] == 20  # the first of a tie, NaN skipped
  assert sweep.best_eval(evals, "average", "min")["step"] == 10
  with pytest.raises(ValueError, match="no evaluation has a finite 'loss'"):
    sweep.best_eval(evals, "loss")


def test_a_run_without_a_finite_score_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
  """A tiny STS-B run that predicts one constant has no Pearson correlation (NaN at every
  evaluation): the sweep records its final evaluation without a best step and runs the next job."""
  from adalink.train import trainer

  def fake_run(config, workdir):
    os.makedirs(workdir)
    score = float("nan") if config.data.tasks == ("stsb",) else 70.0
    lines = [
      {"kind": "setup", "trainable_params": 8},
      {"kind": "train", "step": 1, "loss": 2.0},
      {"kind": "eval", "step": 1, "average": score},
    ]
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
      f.write("".join(json.dumps(line) + "\n" for line in lines))
    return {"metrics": {"step": 1, "average": score}}

  monkeypatch.setattr(trainer, "plan", lambda config: None)
  monkeypatch.setattr(trainer, "train_and_evaluate", fake_run)
  jobs = sweep.grid_jobs("smoke", ["ft"], [4], ["stsb", "rte"], str(tmp_path))
  logged = []
  path = sweep.run_sweep(
    lambda job: glue_configs.get_config(job.arg), jobs, str(tmp_path), log=logged.append
  )
  stsb, rte = tables.load(path)
  assert stsb["best_step"] is None and stsb["average"] != stsb["average"]  # NaN, recorded
  assert rte["best_step"] == 1 and rte["average"] == 70.0
  assert any("no evaluation has a finite 'average'" in line for line in logged)


def test_a_rerun_sweep_skips_the_jobs_it_has_recorded(tmp_path, monkeypatch):
  """Re-running an interrupted sweep trains only the jobs that have no result line yet."""
  from adalink.train import trainer

  trained = []

  def fake_run(config, workdir):
    trained.append(workdir)
    os.makedirs(workdir, exist_ok=True)
    lines = [
      {"kind": "setup", "trainable_params": 8},
      {"kind": "train", "step": 1, "loss": 2.0},
      {"kind": "eval", "step": 1, "average": 60.0},
    ]
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
      f.write("".join(json.dumps(line) + "\n" for line in lines))
    return {"metrics": {"step": 1, "average": 60.0}}

  monkeypatch.setattr(trainer, "plan", lambda config: None)
  monkeypatch.setattr(trainer, "train_and_evaluate", fake_run)
  get = lambda job: glue_configs.get_config(job.arg)
  first = sweep.grid_jobs("smoke", ["ft"], [4], ["rte"], str(tmp_path))
  path = sweep.run_sweep(get, first, str(tmp_path), log=lambda line: None)
  both = sweep.grid_jobs("smoke", ["ft"], [4], ["rte", "cola"], str(tmp_path))
  logged = []
  sweep.run_sweep(get, both, str(tmp_path), log=logged.append)
  assert trained == [first[0].workdir, both[1].workdir]
  assert [r["task"] for r in tables.load(path)] == ["rte", "cola"]
  assert any("rte ft" in line and "skipped" in line for line in logged)


def test_bases_compare_cell_by_cell_with_delta_to_ft():
  shipped = [
    _record("sst2", "ft", None, **{"sst2/accuracy": 80.0}),
    _record("cola", "ft", None, **{"cola/matthews_corrcoef": 20.0}),
    _record("sst2", "adalink", 4, **{"sst2/accuracy": 70.0}),
    _record("cola", "adalink", 4, **{"cola/matthews_corrcoef": 10.0}),
  ]
  random = [
    _record("sst2", "ft", None, **{"sst2/accuracy": 60.0}),
    _record("cola", "ft", None, **{"cola/matthews_corrcoef": 0.0}),
    _record("sst2", "adalink", 4, **{"sst2/accuracy": 50.0}),
  ]
  lines = tables.compare_bases({"shipped": shipped, "random": random}).splitlines()
  assert lines[0] == "| method | # params | sst2 | cola | avg | δ avg to FT |"
  assert "shipped / random" in lines[2]
  assert lines[3] == "| FT | 10 | 80.0 / 60.0 | 20.0 / 0.0 | 50.0 / 30.0 | +0.0 / +0.0 |"
  # No CoLA run from the random base: no average, no delta there.
  assert lines[4] == "| AdaLink r=4 | 40 | 70.0 / 50.0 | 10.0 / - | 40.0 / - | -10.0 / - |"


def test_make_tables_compares_bases_from_the_command_line(tmp_path):
  import subprocess
  import sys

  from tests.conftest import REPO_ROOT

  paths = {}
  for name, score in (("shipped", 80.0), ("random", 60.0)):
    paths[name] = tmp_path / f"{name}.jsonl"
    paths[name].write_text(json.dumps(_record("sst2", "ft", None, **{"sst2/accuracy": score})))
  script = str(REPO_ROOT / "scripts" / "make_tables.py")
  args = [f"--compare=shipped={paths['shipped']}", f"--compare=random={paths['random']}"]
  out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=True)
  assert "| FT | 10 | 80.0 / 60.0 | 80.0 / 60.0 | +0.0 / +0.0 |" in out.stdout
  bad = subprocess.run(
    [sys.executable, script, "--compare=shipped"], capture_output=True, text=True
  )
  assert bad.returncode == 2 and "--compare takes NAME=RESULTS, got ['shipped']" in bad.stderr
