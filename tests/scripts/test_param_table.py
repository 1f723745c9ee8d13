"""The parameter table (adalink.experiments.param_table, behind scripts/param_table.py)
reproduces the AdaLink paper's parameter counts (Tables 1, 4, 5)."""

from adalink.experiments import param_table
from adalink.models import gemma_config


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
  # The public checkpoints' rows are covered by test_public_checkpoint_counts.
  out = param_table.table(sizes=["tiny"], adalink_ranks=[4], lora_ranks=[4], public_models=False)
  for label in ("FT", "LoRA r=4", "PT 64 tokens", "AdaLink r=4", "1,048,576", "262,144"):
    assert label in out


def test_public_checkpoint_counts():
  """Gemma-2B's published size (2.51B with its tied table) and PaliGemma's adapters per
  modality; FT on PaliGemma (2.92B) leaves the SigLIP tower (412M without its unused pooling
  head) out of the trainable count."""
  counts, total = param_table.count_model(gemma_config.get_config("gemma_2b"), {"name": "ft"})
  assert total == counts["trainable"] == 2_506_172_416
  make, streams = param_table.PUBLIC_MODELS["PaliGemma-3B (224 px)"]
  config = make()
  per_modality = {"name": "adalink", "rank": 64, "streams": streams}
  counts, total = param_table.count_model(config, per_modality, streams)
  assert counts["trainable"] == 2 * 2 * 2048 * 64
  ft, _ = param_table.count_model(config, {"name": "ft"}, streams)
  assert total == 2_923_466_480 and total - ft["trainable"] == 412_442_352
