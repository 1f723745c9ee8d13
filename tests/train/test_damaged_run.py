"""A real run whose newest checkpoint gets damaged: the restart warns in one line, resumes from the
previous checkpoint, finishes, and keeps the damaged step aside; a damaged best checkpoint makes
`scripts/eval.py --which best` fail with one `error:` line."""

import logging
import os
import subprocess
import sys

import numpy as np

from adalink import cli
from adalink.train import trainer
from configs import glue as glue_configs
from tests.conftest import REPO_ROOT
from tests.overrides import apply_overrides
from tests.train.test_checkpoint_faults import _damage


def _config(**overrides):
  config = glue_configs.get_config("smoke")
  config.train.quiet = True
  config.train.num_steps = 30
  config.train.checkpoint_every = 10
  config.train.log_every = 10
  config.eval.every_steps = 20
  config.eval.max_examples = 8
  return apply_overrides(config, overrides)


def test_restart_falls_back_past_a_damaged_checkpoint_and_finishes(tmp_path, caplog):
  workdir = str(tmp_path / "run")
  straight = trainer.train_and_evaluate(_config(), str(tmp_path / "straight"))
  trainer.train_and_evaluate(_config(**{"train.num_steps": 20}), workdir)
  assert _damage(os.path.join(workdir, "checkpoints", "20")) > 0
  with caplog.at_level(logging.WARNING, logger="adalink.train"):
    result = trainer.train_and_evaluate(_config(), workdir)
  warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
  assert len(warnings) == 1 and "step 20" in warnings[0] and "\n" not in warnings[0]
  assert os.path.isdir(os.path.join(workdir, "checkpoints_unreadable", "20"))
  assert result["metrics"]["step"] == 30
  # Resumed from step 10 with step 10's data position: the same end state as a straight run.
  a = np.concatenate([np.ravel(x) for x in _leaves(straight["trainable"])])
  b = np.concatenate([np.ravel(x) for x in _leaves(result["trainable"])])
  np.testing.assert_array_equal(a, b)


def _leaves(tree):
  import jax

  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_eval_of_a_damaged_best_checkpoint_is_one_error_line(tmp_path):
  workdir = tmp_path / "run"
  trainer.train_and_evaluate(_config(**{"train.num_steps": 20}), str(workdir))
  best_steps = [n for n in os.listdir(workdir / "best") if n.isdigit()]
  assert best_steps
  _damage(os.path.join(workdir, "best", best_steps[0]))
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  env.pop(cli.DEBUG_ENV, None)
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(REPO_ROOT, "scripts", "eval.py"),
      f"--workdir={workdir}",
      "--which=best",
    ],
    capture_output=True,
    text=True,
    timeout=600,
    cwd=REPO_ROOT,
    env=env,
  )
  assert proc.returncode == cli.EXIT_USER_ERROR, proc.stderr[-3000:]
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "no readable best checkpoint" in errors[0], proc.stderr[-3000:]
  assert "--which latest" in errors[0] and "Traceback" not in proc.stderr
  assert os.path.isdir(workdir / "best_unreadable" / best_steps[0])
