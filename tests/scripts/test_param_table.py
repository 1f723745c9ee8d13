"""The parameter table (adalink.experiments.param_table, behind scripts/param_table.py)
reproduces the AdaLink paper's parameter counts (Tables 1, 4, 5)."""

from adalink.experiments import param_table


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


def test_table_lists_every_method():
  out = param_table.table(sizes=["tiny"], adalink_ranks=[4], lora_ranks=[4])
  for label in ("FT", "LoRA r=4", "PT 64 tokens", "AdaLink r=4", "1,048,576", "262,144"):
    assert label in out
