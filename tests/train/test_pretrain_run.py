"""Pretraining through the real trainer: the smoke run learns, and `small` runs sharded."""

import json
import subprocess

import numpy as np

from adalink.train import trainer
from configs import pretrain as pretrain_configs

from tests.train.train_driver_cmd import driver_command


def test_smoke_pretraining_lowers_the_validation_loss(shared_dir, tmp_path):
  config = pretrain_configs.get_config("smoke")
  config.data.text_dir = str(shared_dir / "data" / "text")
  config.train.num_steps = 60
  config.eval.max_batches = 4
  config.train.quiet = True
  trainer.train_and_evaluate(config, str(tmp_path / "w"))
  evals = [
    json.loads(l)
    for l in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()
    if '"kind": "eval"' in l
  ]
  assert [e["step"] for e in evals] == [0, 60]
  assert evals[1]["loss"] < evals[0]["loss"] - 1.0, evals
  assert evals[1]["token_accuracy"] > evals[0]["token_accuracy"]


def test_small_variant_steps_on_a_4x2_mesh_of_8_devices(shared_dir, tmp_path):
  overrides = {
    "sharding.mesh": [4, 2],
    "train.num_steps": 1,
    "train.checkpoint_every": 1,
    "train.log_every": 1,
    "eval.enabled": False,
    "data.batch_size": 8,
    "data.inputs_length": 32,
    "model.dtype": "float32",
    # Scanned layers compile once for all 6+6 of them: the same step, a fraction of the compile.
    "model.scan_layers": True,
    "data.text_dir": str(shared_dir / "data" / "text"),
    "model.vocab_path": str(shared_dir / "models" / "t5-vocab" / "spiece.model"),
  }
  cmd = driver_command(
    tmp_path / "w", tmp_path / "out.npz", overrides, devices=8, config="pretrain", variant="small"
  )
  proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = np.load(tmp_path / "out.npz")
  assert np.isfinite(out["losses"]).all() and len(out["losses"]) == 1
  # The T5-small vocabulary table (32,128 rows) is split over the model axis of the mesh.
  assert "model" in str(out["embedding_spec"])
  assert tuple(out["embedding_shard_shape"]) == (32128 // 2, 512)
