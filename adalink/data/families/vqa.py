"""`data.kind = 'vqa'`: visual question answering (VQA v2, OK-VQA, or any "images + questions
JSON") for a model that reads images.

Fields: `data.dataset` ('vqa_json' or 'vqav2'); for 'vqa_json' `data.annotation_file`,
`data.image_dir` (default: the JSON's folder) and `data.validation_fraction`; for 'vqav2'
`data.question_file` / `data.annotation_file`, `data.image_dir`, `data.image_template` for
training and `data.validation_question_file` / `data.validation_annotation_file`,
`data.validation_image_dir`, `data.validation_image_template` for evaluation; then
`data.normalization`, `data.prompt` (before each question), the lengths, and the vocabulary fields
of `model`. Evaluation decodes every validation question and scores the VQA accuracy against all
human answers (the task's own metric).
"""

from __future__ import annotations

from adalink import config_fields as cf
from adalink.data.families import base

DATASETS = ("vqa_json", "vqav2")


class VqaFamily(base.SeqioFamily):
  name = "vqa"
  input_streams = ("image", "text")
  evaluation = "decode"
  examples_to_show = 3

  def build(self, config, model: base.ModelFacts) -> base.Data:
    from adalink.data.tasks import vqa

    if model.image_size is None:
      raise ValueError("config.data.kind='vqa' needs a model that reads images")
    dataset = cf.one_of(config, "data.dataset", DATASETS)
    vocabulary = base.vocabulary(config, model)
    kw = dict(
      vocabulary=vocabulary,
      image_size=model.image_size,
      normalization=cf.require(config, "data.normalization"),
      prompt=cf.require(config, "data.prompt"),
    )
    if dataset == "vqa_json":
      image_dir = cf.require(config, "data.image_dir") or None
      task = vqa.get_vqa_json_task(
        cf.existing_path(config, "data.annotation_file"),
        cf.resolve_path(image_dir) if image_dir else None,
        validation_fraction=float(cf.require(config, "data.validation_fraction")),
        **kw,
      )
    else:
      splits = {
        "train": (
          cf.existing_path(config, "data.question_file"),
          cf.existing_path(config, "data.annotation_file"),
          cf.existing_path(config, "data.image_dir"),
          cf.require(config, "data.image_template"),
        ),
        "validation": (
          cf.existing_path(config, "data.validation_question_file"),
          cf.existing_path(config, "data.validation_annotation_file"),
          cf.existing_path(config, "data.validation_image_dir"),
          cf.require(config, "data.validation_image_template"),
        ),
      }
      task = vqa.get_vqav2_task(splits, **kw)
    return base.Data(self.name, self, vocabulary, task, {dataset: task}, base.lengths(config))


FAMILY = base.register(VqaFamily())
