"""Bad input through the real scripts: one `error:` line on stderr, exit status 2, and the work
directory left as it was (not created, or unchanged)."""

import os
import shutil
import subprocess
import sys

import pytest

from adalink import cli
from tests.conftest import REPO_ROOT

TRAIN = [sys.executable, os.path.join(REPO_ROOT, "scripts", "train.py")]
SMOKE = "--config=configs/glue.py:smoke"
TINY_GLUE = os.path.join(REPO_ROOT, "adalink", "data", "fixtures", "testdata", "glue_tiny")


def _run(args, env_extra=None):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})}
  env.pop(cli.DEBUG_ENV, None)
  return subprocess.run(
    args,
    capture_output=True,
    text=True,
    timeout=600,
    cwd=REPO_ROOT,
    env={**env, **(env_extra or {})},
  )


def _error_lines(proc):
  return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def _assert_one_error(proc, *needles):
  assert proc.returncode == cli.EXIT_USER_ERROR, (proc.returncode, proc.stderr[-3000:])
  lines = _error_lines(proc)
  assert len(lines) == 1, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  for needle in needles:
    assert needle in lines[0], lines[0]
  return lines[0]


def _malformed_glue(tmp_path):
  data = tmp_path / "glue"
  shutil.copytree(TINY_GLUE, data)
  with open(data / "SST-2" / "train.tsv", "a") as f:
    f.write("a row with a label that is not one\tmaybe\n")
  return data


@pytest.mark.parametrize(
  "extra, needles",
  [
    (["--config.method.rank=0"], ["method.rank", "0"]),
    (
      ["--config.model.init=checkpoint", "--config.model.checkpoint=/no/such/ckpt"],
      ["config.model.checkpoint", "/no/such/ckpt"],
    ),
  ],
  ids=["bad_config_field", "missing_checkpoint"],
)
def test_train_refuses_bad_input_in_one_line(tmp_path, extra, needles):
  workdir = tmp_path / "run"
  proc = _run(TRAIN + [SMOKE, f"--workdir={workdir}"] + extra)
  _assert_one_error(proc, *needles)
  assert not workdir.exists()


def test_unknown_task_is_one_line(tmp_path):
  workdir = tmp_path / "run"
  proc = _run(TRAIN + ["--config=configs/glue.py:smoke,task=nosuchtask", f"--workdir={workdir}"])
  _assert_one_error(proc, "nosuchtask")
  assert not workdir.exists()


def test_malformed_data_row_names_file_and_line(tmp_path):
  workdir = tmp_path / "run"
  data = _malformed_glue(tmp_path)
  proc = _run(TRAIN + [SMOKE, f"--workdir={workdir}", f"--config.data.data_dir={data}"])
  n_lines = len((data / "SST-2" / "train.tsv").read_text().splitlines())
  _assert_one_error(proc, f"SST-2/train.tsv:{n_lines}", "malformed row")
  assert not workdir.exists()


def test_failed_command_leaves_an_existing_run_untouched(tmp_path):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "notes.txt").write_text("keep me")
  before = sorted(os.listdir(workdir))
  proc = _run(TRAIN + [SMOKE, f"--workdir={workdir}", "--config.method.rank=0"])
  _assert_one_error(proc, "method.rank")
  assert sorted(os.listdir(workdir)) == before and (workdir / "notes.txt").read_text() == "keep me"


def test_debug_shows_the_traceback(tmp_path):
  proc = _run(TRAIN + [SMOKE, f"--workdir={tmp_path / 'run'}", "--config.method.rank=0", "--debug"])
  assert proc.returncode != 0 and "Traceback" in proc.stderr
