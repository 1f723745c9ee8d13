"""adalink.experiments.show_task (behind scripts/show_task.py) prints each task's splits and first
examples."""

import io

from adalink.experiments import show_task

COMMON = dict(split=None, vocab="byte", vocab_path=None)


def test_all_tiny_tasks(tiny_glue_dir):
  out = io.StringIO()
  show_task.show_glue(
    out,
    task="all",
    source="tsv",
    data_dir=str(tiny_glue_dir),
    tfds_data_dir=None,
    on_bad_row="error",
    **{**COMMON, "num": 2},
  )
  text = out.getvalue()
  for name in ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"):
    assert f"== {name} (seqio task adalink_glue_{name}_tsv_" in text
  assert "splits: train=36, validation_matched=12, validation_mismatched=12" in text
  assert text.count("inputs:  mnli hypothesis: ") == 2
  assert "targets: " in text and "input ids [" in text


def test_one_real_task_with_sentencepiece(glue_dir, spiece_model):
  out = io.StringIO()
  show_task.show_glue(
    out,
    task="rte",
    source="tsv",
    data_dir=str(glue_dir),
    tfds_data_dir=None,
    on_bad_row="error",
    split=None,
    num=5,
    vocab="sentencepiece",
    vocab_path=str(spiece_model),
  )
  text = out.getvalue()
  assert "splits: train=2490, validation=277" in text
  assert text.count("[validation #") == 5
  assert "inputs:  rte sentence1: Dana Reeve" in text


def test_caption_json(tiny_captions_dir):
  out = io.StringIO()
  show_task.show_captions(
    out,
    str(tiny_captions_dir / "captions.json"),
    image_size=32,
    split="all",
    num=1,
    vocab="byte",
    vocab_path=None,
  )
  text = out.getvalue()
  assert "image (32, 32, 3) float32" in text and text.count("ref: ") == 3
