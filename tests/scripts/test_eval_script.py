"""scripts/eval.py re-evaluates a run's checkpoint and gets what the run itself reported."""

import json
import os
import subprocess
import sys

from adalink.train import trainer
from configs import glue as glue_configs

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "eval.py")


def test_eval_script_reproduces_the_runs_final_eval(tmp_path):
  config = glue_configs.get_config("smoke")
  config.train.num_steps = 4
  config.train.checkpoint_every = 4
  config.train.quiet = True
  config.eval.max_examples = 16
  result = trainer.train_and_evaluate(config, str(tmp_path / "run"))
  out = tmp_path / "eval.jsonl"
  proc = subprocess.run(
    [sys.executable, SCRIPT, f"--workdir={tmp_path / 'run'}", f"--output={out}"],
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.loads(out.read_text().splitlines()[-1])
  assert record["step"] == 4 and record["method"]["name"] == "adalink"
  assert record["sst2/accuracy"] == result["metrics"]["sst2/accuracy"]
  assert "sst2/accuracy:" in proc.stdout
