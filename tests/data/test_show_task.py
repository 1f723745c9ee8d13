"""scripts/show_task.py prints each task's splits and first examples."""

import importlib.util
import io
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "show_task.py"


def _main():
  spec = importlib.util.spec_from_file_location("show_task", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.main


def test_all_tiny_tasks(tiny_glue_dir):
  out = io.StringIO()
  assert _main()(["--data_dir", str(tiny_glue_dir), "--num", "2"], out) == 0
  text = out.getvalue()
  for name in ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"):
    assert f"== {name} (seqio task adalink_glue_{name}_tsv_" in text
  assert "splits: train=36, validation_matched=12, validation_mismatched=12" in text
  assert text.count("inputs:  mnli hypothesis: ") == 2
  assert "targets: " in text and "input ids [" in text


def test_one_real_task_with_sentencepiece(glue_dir, spiece_model):
  out = io.StringIO()
  _main()(
    [
      "--task",
      "rte",
      "--data_dir",
      str(glue_dir),
      "--vocab",
      "sentencepiece",
      "--vocab_path",
      str(spiece_model),
      "--num",
      "5",
    ],
    out,
  )
  text = out.getvalue()
  print(text)
  assert "splits: train=2490, validation=277" in text
  assert text.count("[validation #") == 5
  assert "inputs:  rte sentence1: Dana Reeve" in text


def test_caption_json(tiny_captions_dir):
  out = io.StringIO()
  _main()(
    [
      "--captions_json",
      str(tiny_captions_dir / "captions.json"),
      "--split",
      "all",
      "--num",
      "1",
      "--image_size",
      "32",
    ],
    out,
  )
  text = out.getvalue()
  assert "image (32, 32, 3) float32" in text and text.count("ref: ") == 3
