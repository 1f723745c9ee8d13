"""Gemma and PaliGemma through `train_and_evaluate`. GLUE as generation on Gemma: the smoke config
trains (loss falls), decodes the dev set from the cache and scores it; AdaLink's checkpoint holds
only its adapters, and full fine-tuning learns to answer with label words. The PaliGemma smoke
captions its validation images and scores CIDEr-D, and answers the tiny VQA questions scored by
VQA accuracy. On a (4, 2) mesh of 8 fake devices Gemma trains as on one device."""

import json
import os

import pytest

import adalink
from adalink.train import trainer
from configs import gemma as gemma_configs
from tests.overrides import apply_overrides


@pytest.mark.parametrize("method", ["adalink", "ft"])
def test_gemma_smoke_trains_decodes_and_scores(method, tmp_path):
  config = gemma_configs.get_config(f"smoke,method={method}")
  config.train.quiet = True
  config.train.num_steps = 60
  config.train.log_every = 10
  config.train.checkpoint_every = 60
  config.eval.every_steps = 0
  result = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  metrics = result["metrics"]
  assert metrics["step"] == 60 and metrics["sst2/num_examples"] == 24
  records = [json.loads(l) for l in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in records if r["kind"] == "train"]
  assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]
  if method == "ft":
    # Random tokens never spell 'positive' / 'negative'; a model that learned the format does.
    assert metrics["sst2/accuracy"] > 25.0
  else:
    # Only the adapters are saved: the frozen tiny Gemma alone is far larger.
    assert metrics["checkpoint_bytes"] < 100_000


def test_paligemma_smoke_captions_and_scores_cider(tmp_path):
  from configs import paligemma as paligemma_configs

  config = paligemma_configs.get_config("smoke")
  config.train.quiet = True
  config.train.num_steps = 2
  config.train.checkpoint_every = 2
  config.train.log_every = 1
  config.eval.max_decode_len = 8
  metrics = trainer.train_and_evaluate(config, str(tmp_path / "w"))["metrics"]
  assert metrics["step"] == 2 and metrics["image_captions/num_examples"] == 3
  assert 0.0 <= metrics["image_captions/cider_d"] <= 1000.0


def test_gemma_on_a_4x2_mesh_of_8_devices_matches_one_device(tmp_path):
  """The same partitioning rules place Gemma's weights (the tied table split over the model
  axis); 10 steps on 8 fake devices follow one device's losses."""
  import subprocess

  import numpy as np

  from configs import gemma as gemma_configs
  from tests.train.saved_batches import save_train_batches
  from tests.train.train_driver_cmd import driver_command

  common = {
    "train.log_every": 1,
    "eval.enabled": False,
    "train.num_steps": 10,
    "train.checkpoint_every": 10,
    "data.batch_size": 8,
    "data.host_split": "slice",
  }
  # Both runs read the same saved batches (no TensorFlow in the two processes).
  config = gemma_configs.get_config("smoke")
  apply_overrides(config, common)
  batches = save_train_batches(config, str(tmp_path / "batches"), common["train.num_steps"])
  runs = {}
  for name, devices, extra in (("one", 1, {}), ("mesh", 8, {"sharding.mesh": [4, 2]})):
    out = tmp_path / f"{name}.npz"
    cmd = driver_command(
      tmp_path / name, out, {**common, **batches, **extra}, devices, config="gemma", variant="smoke"
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs[name] = dict(np.load(out))
  one, mesh = runs["one"], runs["mesh"]
  rel = np.abs(mesh["losses"] - one["losses"]) / np.abs(one["losses"])
  assert len(mesh["losses"]) == 10 and rel.max() <= 1e-5, rel.max()
  assert "model" in str(mesh["embedding_spec"])
  assert tuple(mesh["embedding_shard_shape"]) == (512 // 2, 64)


def test_paligemma_answers_questions_and_scores_vqa_accuracy(tmp_path):
  from adalink.data.tasks import vqa_annotations
  from configs import paligemma as paligemma_configs

  config = paligemma_configs.get_config("smoke,data=vqa_tiny")
  config.train.quiet = True
  config.train.num_steps = 2
  config.train.checkpoint_every = 2
  metrics = trainer.train_and_evaluate(config, str(tmp_path / "w"))["metrics"]
  validation = vqa_annotations.load_vqa_json(
    config.data.annotation_file.replace("{package}", os.path.dirname(adalink.__file__)),
    validation_fraction=config.data.validation_fraction,
  )["validation"]
  assert metrics["vqa_json/num_examples"] == len(validation)
  assert 0.0 <= metrics["vqa_json/vqa_accuracy"] <= 100.0
  assert metrics["average"] == metrics["vqa_json/vqa_accuracy"]
