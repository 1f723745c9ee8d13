"""The pretraining curve read from a run's metrics.jsonl: re-done steps replace abandoned ones."""

import json
import math

import pytest

from adalink.experiments import curves


def test_curve_keeps_the_last_record_of_each_step(tmp_path):
  path = tmp_path / "metrics.jsonl"
  recs = [
    {"step": 0, "kind": "setup"},
    {"step": 0, "kind": "eval", "loss": 9.5, "token_accuracy": 0.0},
    {"step": 50, "kind": "train", "loss": 7.0},
    {"step": 100, "kind": "eval", "loss": 6.0, "token_accuracy": 10.0},
    {"step": 150, "kind": "eval", "loss": 6.5, "token_accuracy": 9.0},  # abandoned by a restart
    {"step": 100, "kind": "setup"},
    {"step": 150, "kind": "train", "loss": 5.5},
    {"step": 150, "kind": "eval", "loss": 5.0, "token_accuracy": 20.0},
  ]
  path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
  rows = curves.read_curve(str(path), tokens_per_step=10)
  assert [r["step"] for r in rows] == [0, 100, 150]
  assert [r["tokens"] for r in rows] == [0, 1000, 1500]
  assert rows[2]["validation_loss"] == 5.0 and rows[2]["train_loss"] == 5.5
  assert math.isnan(rows[0]["train_loss"])
  table = curves.markdown(rows)
  assert "| 150 | 1,500 | 5.000 | 20.00 | 5.500 |" in table
  curves.plot(rows, str(tmp_path / "curve.png"), "test")
  assert (tmp_path / "curve.png").stat().st_size > 1000


def test_a_broken_line_is_named(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 0, "kind": "eval", "loss": 1, "token_accuracy": 2}\n{oops\n')
  with pytest.raises(ValueError, match="metrics.jsonl:2"):
    curves.read_curve(str(path), 1)
