"""scripts/param_table.py reproduces the AdaLink paper's parameter counts (Tables 1, 4, 5)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))

import param_table  # noqa: E402


def test_adalink_counts_at_t5_11b_width():
  for rank, want in ((4, 8_192), (256, 524_288), (1024, 2_097_152)):
    counts, _ = param_table.count("t5_11b", {"name": "adalink", "rank": rank})
    assert counts["trainable"] == want


def test_pali_x_width_counts():
  assert param_table.modality_adapters(4096, 64, unified=False) == 1_048_576
  assert param_table.modality_adapters(4096, 128, unified=True) == 1_048_576
  counts, _ = param_table.count("xxl", {"name": "pt", "num_prompts": 64, "reparam_hidden": 512})
  assert counts["prompt"] == 262_144
  assert counts["reparam"] == 2 * 4096 * 512 + 2 * 4096


def test_table_prints_every_method(capsys):
  param_table.main(["--sizes", "tiny", "--adalink-ranks", "4", "--lora-ranks", "4"])
  out = capsys.readouterr().out
  for label in ("FT", "LoRA r=4", "PT 64 tokens", "AdaLink r=4", "1,048,576", "262,144"):
    assert label in out
