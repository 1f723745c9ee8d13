"""Pretraining from saved batches: the files hold exactly what the seqio pipeline yields, and a
run over them needs no TensorFlow and evaluates to the same loss as the pipeline."""

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from adalink.data.pipeline import batch_files
from adalink.train import trainer
from configs import pretrain as pretrain_configs

from adalink.experiments import pretokenize  # noqa: E402

TRAIN_BATCHES = 5


def smoke_config(shared_dir, batches=None):
  config = pretrain_configs.get_config("smoke" + (f",batches={batches}" if batches else ""))
  config.data.text_dir = str(shared_dir / "data" / "text")
  config.eval.max_batches = 2
  config.train.quiet = True
  return config


@pytest.fixture(scope="module")
def saved(shared_dir, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("pretok") / "batches")
  pretokenize.pretokenize(smoke_config(shared_dir), out, TRAIN_BATCHES, batches_per_shard=2)
  return out


def test_saved_batches_are_the_batches_training_reads(shared_dir, saved):
  config = smoke_config(shared_dir)
  data = trainer.build_data(config, trainer.plan(config).model_config)
  want = list(itertools.islice(trainer.train_batches(config, data, 0), TRAIN_BATCHES))
  files = batch_files.BatchFiles(saved)
  assert [s["file"] for s in files.split("train")["shards"]] == [
    "train-00000.npz",
    "train-00001.npz",
    "train-00002.npz",
  ]
  got = list(files.batches("train"))
  assert len(got) == TRAIN_BATCHES
  for g, w in zip(got, want):
    assert sorted(g) == sorted(w)
    for k in w:
      assert g[k].dtype == w[k].dtype and np.array_equal(g[k], w[k]), k
  # Resuming at a data position, and starting over after the last batch.
  tail = list(itertools.islice(files.batches("train", 3, repeat=True), 3))
  assert all(
    np.array_equal(a["encoder_input_tokens"], b["encoder_input_tokens"])
    for a, b in zip(tail, [want[3], want[4], want[0]])
  )
  assert files.num_batches("validation") == 2 and files.batch_size("validation") == 16
  assert files.lengths == data.lengths


PROGRAM = r"""
import sys, json

# As on a machine without them: `import` fails and importlib's find_spec answers None (orbax asks).
for name in ("tensorflow", "seqio", "tensorflow_text", "tensorflow_datasets"):
  sys.modules[name] = None
sys.path.insert(0, ".")
from adalink.train import trainer
from configs import pretrain
config = pretrain.get_config("smoke,batches=" + sys.argv[1])
config.train.num_steps = 7        # past the 5 saved batches: the stream starts over
config.train.checkpoint_every = 7
config.eval.max_batches = 2
config.train.quiet = True
out = trainer.train_and_evaluate(config, sys.argv[2])
assert not any(m.split(".")[0] in ("tensorflow", "seqio") and sys.modules[m] is not None
               for m in sys.modules)
print(json.dumps(out["metrics"]))
"""


def test_training_from_saved_batches_needs_no_tensorflow(shared_dir, saved, tmp_path):
  workdir = str(tmp_path / "w")
  proc = subprocess.run(
    [sys.executable, "-c", PROGRAM, saved, workdir],
    capture_output=True,
    text=True,
    timeout=600,
    cwd=os.path.join(os.path.dirname(__file__), "..", ".."),
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "epoch 1 starts over" in proc.stderr
  metrics = json.loads(proc.stdout.strip().splitlines()[-1])
  assert metrics["step"] == 7 and np.isfinite(metrics["loss"])
  # The same checkpoint scored through the seqio pipeline gives the same validation loss.
  config = smoke_config(shared_dir)
  model, variables, data, p, step = trainer.restore_for_eval(config, workdir)
  assert step == 7
  ref = trainer.evaluate(model, variables, data, config, p.mesh, p.spec)
  assert ref["num_tokens"] == metrics["num_tokens"]
  assert abs(ref["loss"] - metrics["loss"]) < 1e-5, (ref, metrics)


def test_mismatched_or_missing_batches_are_refused(shared_dir, saved, tmp_path):
  config = smoke_config(shared_dir, batches=saved)
  config.data.batch_size = 8
  with pytest.raises(ValueError, match=r"config.data.batch_size=8.*hold 16 rows"):
    trainer.build_data(config, trainer.plan(config).model_config)
  config = smoke_config(shared_dir, batches=saved)
  config.data.inputs_length = 128
  with pytest.raises(ValueError, match=r"config.data.inputs_length=128.*inputs length 64"):
    trainer.build_data(config, trainer.plan(config).model_config)
  config = smoke_config(shared_dir, batches=str(tmp_path))
  with pytest.raises(FileNotFoundError, match="no meta.json"):
    trainer.build_data(config, trainer.plan(config).model_config)
  before = sorted(os.listdir(saved))
  with pytest.raises(FileExistsError, match="exists"):
    pretokenize.pretokenize(smoke_config(shared_dir), saved, 1)
  assert sorted(os.listdir(saved)) == before
