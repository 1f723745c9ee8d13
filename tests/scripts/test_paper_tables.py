"""The paper's tables as runs and as output: `sweep.py --paper-table N` lists exactly each table's
runs, every one of them a config the trainer accepts; `make_tables --paper-table` prints each
table in the paper's columns, the paper's numbers beside ours, and results of runs that differ
only in their setting or checkpoint family land in their own rows."""

import json
import os
import subprocess
import sys

import pytest

from adalink.data.tasks import glue_spec
from adalink.experiments import paper_rows, paper_tables, sweep, tables
from adalink.train import trainer
from tests.conftest import REPO_ROOT

COUNTS = {1: 16, 2: 4, 3: 4, 4: 32, 5: 36, 6: 56}


def _config_module(config_file):
  import importlib

  return importlib.import_module(os.path.splitext(config_file)[0].replace("/", "."))


def test_each_table_lists_exactly_its_runs():
  for table, count in COUNTS.items():
    runs = paper_rows.table_runs(table)
    assert len(runs) == count, table
    assert len({r.identity for r in runs}) == count  # no two runs of a table are the same
    assert len({r.name for r in runs}) == count  # nor share a work directory
  # Shared runs: Table 6's FLAN r=4 is Table 5's single-task FLAN AdaLink, Table 2's r=64 and
  # Table 3's modality-based rows are Table 1's AdaLink COCO runs.
  t5 = {r.identity for r in paper_rows.table_runs(5)}
  assert {r.identity for r in paper_rows.table_runs(6) if r.rank in (4, 256)} <= t5
  t1 = {r.identity for r in paper_rows.table_runs(1)}
  assert {r.identity for r in paper_rows.table_runs(3) if not r.unified} <= t1
  with pytest.raises(ValueError, match="no table 7"):
    paper_rows.table_runs(7)


def test_every_listed_config_passes_the_trainers_static_checks():
  for table in COUNTS:
    for run in paper_rows.table_runs(table):
      config = _config_module(run.config_file).get_config(run.arg)
      assert config.method.name == run.method, run
      if run.rank is not None:
        assert config.method.rank == run.rank, run
      if run.setting == "multi_task":
        assert config.data.tasks == glue_spec.GLUE_TASKS and not config.method.get("per_task")
      elif run.setting == "single_task":
        assert config.data.tasks == (run.dataset,)
      config.model.init = "random"  # the checkpoint is the user's (--for FAMILY:model.checkpoint=)
      trainer.plan(config)


def test_the_script_emits_a_tables_commands_with_per_family_fields(tmp_path):
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(REPO_ROOT, "scripts", "sweep.py"),
      "--paper-table=3",
      "--emit",
      f"--root={tmp_path}",
      "--for=mmit:model.checkpoint=/ckpt/paligemma-3b-mix-224",
      "--for=coco:data.image_dir=/data/coco",
    ],
    capture_output=True,
    text=True,
    timeout=120,
    cwd=REPO_ROOT,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 4 and all("configs/paligemma.py:" in line for line in lines)
  assert sum("--config.model.checkpoint=/ckpt/paligemma-3b-mix-224" in line for line in lines) == 2
  assert all("--config.data.image_dir=/data/coco" in line for line in lines)
  with pytest.raises(ValueError, match=r"checkpoint family or dataset \['flna'\]"):
    sweep.paper_jobs(paper_rows.table_runs(5), str(tmp_path), ["flna:model.checkpoint=/x"])


def _paper_records():
  """Results whose scores are exactly the paper's, one per run of every table."""
  records = []
  for table in COUNTS:
    runs = paper_rows.table_runs(table)
    for job, run in zip(sweep.paper_jobs(runs, "/r"), runs):
      record = {**dict(job.identity), "trainable_params": 1000}
      for dataset, value in run.paper.items():
        if run.setting == "multimodal":
          record["average"] = value
        else:
          view = "mnli_matched" if dataset == "mnli" else dataset
          record[f"{view}/{glue_spec.get_spec(view).metric_names[0]}"] = value
      records.append(record)
  return records


def _cells(table, first):
  return next(row for row in table.rows if row[: len(first)] == first)


def test_tables_have_the_papers_columns_and_reproduce_its_averages_and_deltas(tmp_path):
  records = _paper_records()
  t5 = paper_tables.paper_table(5, records, with_paper=True)
  assert t5.header[:4] == ["Setting", "Checkpoint", "Method", "#Tunable Param."]
  assert t5.header[4:] == [
    "MNLI Acc", "QNLI Acc", "SST2 Acc", "QQP Acc", "MRPC Acc", "CoLA Mcc", "RTE Acc",
    "STS-B Pearson", "Avg.",
  ]  # fmt: skip
  # Our Avg. is the paper's formula: on the paper's own numbers it gives the paper's Avg.
  flan_ft = _cells(t5, ["single task", "FLAN", "FT"])
  assert flan_ft[3] == "1,000 x 8" and flan_ft[-1] == "90.6"
  assert t5.rows[t5.rows.index(flan_ft) + 1][2:4] == ["paper", "11B x 8"]
  t1 = paper_tables.paper_table(1, records, with_paper=True)
  assert t1.header[-2:] == ["avg. δ to FT MMIT", "avg. δ to FT Raw"]
  assert _cells(t1, ["LoRA"])[-2:] == ["-0.05", "-1.05"]  # as the paper prints them
  t4 = paper_tables.paper_table(4, records)
  assert _cells(t4, ["AdaLink"])[-2] == "-0.05"
  t3 = paper_tables.paper_table(3, records, with_paper=True)
  assert t3.rows[0] == ["CIDEr", "145.5", "145.2", "146.3", "146.2"]
  for number in COUNTS:
    table = paper_tables.paper_table(number, records, with_paper=True)
    assert "-" not in [c for row in table.rows for c in row[1:] if c != ""], number
  path = tmp_path / "results.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in records))
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(REPO_ROOT, "scripts", "make_tables.py"),
      f"--results={path}",
      "--paper-table=all",
      "--with-paper",
      f"--out={tmp_path / 'out'}",
    ],
    capture_output=True,
    text=True,
    timeout=120,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.count("### Table") == 6
  written = sorted(os.listdir(tmp_path / "out"))
  assert written == sorted(
    [f"TABLE_{n}.{ext}" for n in COUNTS for ext in ("md", "csv")] + ["TABLE_2.png", "TABLE_6.png"]
  )
  assert (tmp_path / "out" / "TABLE_6.png").read_bytes()[:4] == b"\x89PNG"


def test_two_tiny_runs_of_different_checkpoint_families_fill_their_own_rows(tmp_path):
  """Table 5's single-task FLAN and T5 AdaLink rows on SST-2, as tiny random stand-ins
  (`paper_rows.tiny_stand_in`): each result lands in its own row (and in Table 6's rank rows,
  which are the same runs)."""
  runs = [
    r
    for r in paper_rows.table_runs(5)
    if r.setting == "single_task" and r.method == "adalink" and r.dataset == "sst2"
  ]
  jobs = sweep.paper_jobs(runs, str(tmp_path), stand_in=paper_rows.tiny_stand_in)
  assert [j.arg for j in jobs] == [
    "smoke,method=adalink,task=sst2,rank=4",
    "smoke,method=adalink,task=sst2,rank=32",  # r=256 capped at the smoke T5's width
  ]
  short = ["train.num_steps=2", "train.log_every=1", "train.checkpoint_every=2"]
  short += ["eval.every_steps=2", "eval.max_examples=4", "eval.max_decode_len=4"]
  short += ["data.batch_size=4", "train.quiet=true"]

  def tiny(job):
    return _config_module(job.config_file).get_config(job.arg)

  path = sweep.run_sweep(tiny, jobs, str(tmp_path), short, log=lambda s: None)
  results = tables.load(path)
  assert [(r["checkpoint"], r["rank"]) for r in results] == [("flan", 4), ("t5", 256)]
  table = paper_tables.paper_table(5, results)
  sst2 = table.header.index("SST2 Acc")
  for record in results:
    row = _cells(
      table, ["single task", paper_rows.CHECKPOINT_LABELS[record["checkpoint"]], "AdaLink"]
    )
    assert row[sst2] == f"{record['sst2/accuracy']:.1f}"
    assert row[3] == f"{record['trainable_params']:,} x 8"  # per task, as the paper counts
    assert row[sst2 - 1] == "-" and row[-1] == "-"  # the other tasks did not run
  assert (
    _cells(table, ["single task", "FLAN", "AdaLink"])[3]
    != _cells(table, ["single task", "T5", "AdaLink"])[3]
  )
  assert _cells(paper_tables.paper_table(6, results), ["T5", "256"])[sst2 - 2] == (
    f"{results[1]['sst2/accuracy']:.1f}"
  )
