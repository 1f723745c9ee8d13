"""`configs/glue.py:zoo,task=NAME`: each task's lengths fit its labels in the shipped vocabulary."""

import os

import pytest
import sentencepiece as spm

import adalink
from adalink.data.tasks import glue_spec
from configs import glue

VOCAB = os.path.join(os.path.dirname(adalink.__file__), "zoo", "t5_nano_en", "spiece.model")


@pytest.mark.parametrize("task", ["sst2", "cola", "mrpc", "rte", "stsb"])
def test_every_label_and_its_eos_fit_the_targets(task):
  c = glue.get_config(f"zoo,task={task}")
  assert list(c.data.tasks) == [task]
  assert c.eval.max_decode_len == c.data.targets_length
  spec = glue_spec.get_spec(task)
  texts = spec.label_names or ["5.0", "0.2", "3.8"]
  sp = spm.SentencePieceProcessor(model_file=VOCAB)
  longest = max(len(sp.encode(t)) for t in texts)
  assert longest + 1 <= c.data.targets_length, (task, longest)


def test_a_mixture_takes_the_longest_lengths_of_its_tasks():
  c = glue.get_config("zoo,task=sst2+rte")
  assert (c.data.inputs_length, c.data.targets_length) == (256, 8)
  assert glue.get_config("zoo").data.inputs_length == 64  # the main job's SST-2 default
