"""Captioning through the trainer: the `pali` model family with the `captioning` data family
trains, decodes every validation image and scores CIDEr-D; a family mismatch is refused."""

import pytest

from adalink.train import trainer
from configs import captioning as captioning_configs
from configs import glue as glue_configs


def test_captioning_smoke_trains_and_scores_cider(tmp_path):
  config = captioning_configs.get_config("smoke")
  config.train.quiet = True
  config.train.num_steps = 2
  config.train.checkpoint_every = 2
  config.train.log_every = 1
  config.eval.max_decode_len = 8
  result = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  metrics = result["metrics"]
  assert metrics["step"] == 2
  # The tiny fixture holds 12 images; validation_fraction 0.25 of them are held out.
  assert metrics["image_captions/num_examples"] == 3
  assert 0.0 <= metrics["image_captions/cider_d"] <= 1000.0
  assert metrics["average"] == metrics["image_captions/cider_d"]


def test_text_data_on_the_image_text_model_is_refused(tmp_path):
  config = captioning_configs.get_config("smoke")
  config.data = glue_configs.get_config("smoke").data
  with pytest.raises(ValueError, match=r"config.data.kind='glue' gives examples with \('text',\)"):
    trainer.train_and_evaluate(config, str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_vqa_on_the_pali_model_trains_and_scores_vqa_accuracy(tmp_path):
  """Table 4's rows on the PaLI-style model (ViT + T5): `,data=vqa_tiny` is the package's
  synthetic questions, decoded and scored by VQA accuracy."""
  config = captioning_configs.get_config("adalink_r8,data=vqa_tiny")
  assert config.model.kind == "pali" and config.data.kind == "vqa"
  config.train.update(quiet=True, num_steps=2, checkpoint_every=2, log_every=1)
  config.eval.update(every_steps=0)
  metrics = trainer.train_and_evaluate(config, str(tmp_path / "w"))["metrics"]
  assert metrics["vqa_json/num_examples"] > 0
  assert 0.0 <= metrics["vqa_json/vqa_accuracy"] <= 100.0
  assert metrics["average"] == metrics["vqa_json/vqa_accuracy"]
