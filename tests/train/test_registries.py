"""The trainer grows by registration: a data family and a model family defined in this file alone
train and evaluate through `train_and_evaluate`, and the trainer checks they fit each other.

The toy data family is a copy task ("copy: abc" -> "abc") held in memory as a seqio Task with its
own postprocessing (upper-casing) and metric (exact match), and three task ids, so per-task
adapters are sized by it. The toy model family is the `t5` family's loader and wrapper under a
new name with its own config builder (a T5 with `model.layers` layers).
"""

import dataclasses
import random

import ml_collections
import numpy as np
import pytest

from adalink.data.families import base as data_base
from adalink.models import t5
from adalink.train import model_families, trainer
from configs import glue as glue_configs

COPY = "toy_copy"
TOY_T5 = "toy_t5"
NUM_TASKS = 3
WORDS = ["ab", "cd", "ef", "gh", "ij", "kl", "mn", "op"]


def _examples(split: str, n: int):
  rng = random.Random(split)
  out = []
  for i in range(n):
    text = " ".join(rng.choice(WORDS) for _ in range(2))
    out.append({"inputs": f"copy: {text}", "targets": text, "task_id": i % NUM_TASKS})
  return out


def upper_postprocess(text, example=None, is_target=False):
  del example, is_target
  return (text.decode("utf-8") if isinstance(text, bytes) else str(text)).strip().upper()


SCORED = []  # what the task's metric saw, for the test to check


def exact_match(targets, predictions):
  SCORED.append((list(targets), list(predictions)))
  hits = [t == p for t, p in zip(targets, predictions)]
  return {"exact_match": 100.0 * float(np.mean(hits))}


def copy_task(vocabulary):
  import seqio
  import tensorflow as tf

  splits = {"train": _examples("train", 64), "validation": _examples("validation", 12)}

  def dataset_fn(split, shuffle_files, seed=None):
    del shuffle_files, seed
    rows = splits[split]
    return tf.data.Dataset.from_tensor_slices(
      {
        "inputs": [r["inputs"] for r in rows],
        "targets": [r["targets"] for r in rows],
        "task_id": np.asarray([r["task_id"] for r in rows], np.int32),
      }
    )

  features = {
    "inputs": seqio.Feature(vocabulary, add_eos=True),
    "targets": seqio.Feature(vocabulary, add_eos=True),
  }
  return seqio.Task(
    "adalink_test_toy_copy",
    source=seqio.FunctionDataSource(dataset_fn, splits=tuple(splits)),
    output_features=features,
    preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
    postprocess_fn=upper_postprocess,
    metric_fns=[exact_match],
  )


class CopyFamily(data_base.SeqioFamily):
  name = COPY
  input_streams = ("text",)
  evaluation = "decode"

  def num_tasks(self, config) -> int:
    return NUM_TASKS

  def build(self, config, model):
    vocabulary = data_base.vocabulary(config, model)
    task = copy_task(vocabulary)
    lengths = data_base.lengths(config)
    return data_base.Data(self.name, self, vocabulary, task, {"copy": task}, lengths, NUM_TASKS)


class ImageCopyFamily(CopyFamily):
  """The same data declared as image+text, which a text-only model cannot read."""

  name = "toy_image_copy"
  input_streams = ("image", "text")


def toy_t5_config(config) -> t5.T5Config:
  layers = int(config.model.layers)
  return t5.get_config(
    "tiny", num_encoder_layers=layers, num_decoder_layers=layers, dtype="float32", dropout_rate=0.0
  )


@pytest.fixture
def registered():
  data_base.register(CopyFamily())
  data_base.register(ImageCopyFamily())
  t5_family = model_families.FAMILIES.get("t5")
  model_families.register(dataclasses.replace(t5_family, name=TOY_T5, make_config=toy_t5_config))
  try:
    yield
  finally:
    data_base.FAMILIES.unregister(COPY)
    data_base.FAMILIES.unregister("toy_image_copy")
    model_families.FAMILIES.unregister(TOY_T5)


def _config(steps=4):
  config = glue_configs.get_config("smoke")
  config.train.quiet = True
  config.train.num_steps = steps
  config.train.checkpoint_every = steps
  config.train.log_every = steps
  config.eval.every_steps = 0
  return config


def _copy_data(config):
  config.data = ml_collections.ConfigDict(
    {
      "kind": COPY,
      "inputs_length": 16,
      "targets_length": 8,
      "batch_size": 8,
      "pack": False,
      "host_split": "shard",
    }
  )
  config.eval.batch_size = 8
  config.eval.max_decode_len = 8
  return config


def test_a_data_family_from_this_file_trains_and_scores_with_its_own_metric(registered, tmp_path):
  SCORED.clear()
  config = _copy_data(_config())
  config.method.per_task = True  # one adapter per task id the family's examples use
  result = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  metrics = result["metrics"]
  assert metrics["step"] == 4
  assert set(metrics) >= {"copy/exact_match", "copy/num_examples", "average"}
  assert metrics["copy/num_examples"] == 12
  assert metrics["average"] == metrics["copy/exact_match"]
  # The evaluator applied the task's own postprocessing to both sides, then its metric.
  targets, predictions = SCORED[-1]
  want = [r["targets"].upper() for r in _examples("validation", 12)]
  assert targets == want
  assert len(predictions) == 12 and all(p == p.upper() for p in predictions)
  # Per-task adapters are sized by the family's task ids, not by GLUE's task list.
  assert result["spec"].num_tasks == NUM_TASKS
  shapes = [np.shape(x) for x in __import__("jax").tree_util.tree_leaves(result["trainable"])]
  assert shapes and all(s[0] == NUM_TASKS for s in shapes), shapes


def test_a_model_family_from_this_file_trains_on_glue(registered, tmp_path):
  config = _config()
  config.eval.max_examples = 8
  config.model = ml_collections.ConfigDict(
    {
      "kind": TOY_T5,
      "layers": 1,
      "init": "random",
      "init_seed": 0,
      "vocab": "byte",
      "vocab_path": "",
      "vocab_extra_ids": 0,
    }
  )
  result = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  assert result["metrics"]["step"] == 4
  assert 0.0 <= result["metrics"]["sst2/accuracy"] <= 100.0
  # The model was built by this file's config builder: one layer each side.
  params = result["frozen"]["params"]
  assert sorted(k for k in params["encoder"] if k.startswith("layers_")) == ["layers_0"]
  assert sorted(k for k in params["decoder"] if k.startswith("layers_")) == ["layers_0"]


def test_families_that_do_not_fit_are_refused_before_the_workdir_is_touched(registered, tmp_path):
  config = _copy_data(_config())
  config.data.kind = "toy_image_copy"
  with pytest.raises(ValueError, match=r"config.data.kind='toy_image_copy'.*'image', 'text'"):
    trainer.train_and_evaluate(config, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_unknown_kinds_name_the_field_and_the_known_families():
  config = _config()
  config.data.kind = "nope"
  with pytest.raises(ValueError, match=r"config.data.kind: unknown data family 'nope'.*glue"):
    trainer.plan(config)
  config = _config()
  config.model.kind = "nope"
  with pytest.raises(ValueError, match=r"config.model.kind: unknown model family 'nope'.*pali"):
    trainer.plan(config)


def test_unregistered_families_are_gone(registered):
  data_base.FAMILIES.unregister(COPY)
  model_families.FAMILIES.unregister(TOY_T5)
  assert COPY not in data_base.FAMILIES and TOY_T5 not in model_families.FAMILIES
  assert {"glue", "captioning", "pretrain", "batch_files"} <= set(data_base.FAMILIES)
  assert {"t5", "pali"} <= set(model_families.FAMILIES)


def test_glue_task_ids_come_from_the_configured_tasks():
  glue = data_base.FAMILIES.get("glue")
  config = _config()
  config.data.tasks = ("sst2", "cola")  # GLUE ids 1 and 0
  assert glue.num_tasks(config) == 2
  config.data.tasks = ("mrpc", "rte")  # ids 2 and 7: adapters must cover id 7
  assert glue.num_tasks(config) == 8
  config.data.tasks = ("sst2", "nli")
  with pytest.raises(ValueError, match="config.data.tasks: unknown GLUE task 'nli'"):
    glue.num_tasks(config)
