"""`data.kind = 'vqa'`: visual question answering (VQA v2, OK-VQA, TextVQA, ST-VQA, DocVQA, or
any "images + questions JSON") for a model that reads images.

Fields: `data.dataset` ('vqa_json', 'vqav2', 'textvqa', 'stvqa' or 'docvqa').
  * 'vqa_json': `data.annotation_file`, `data.image_dir` (default: the JSON's folder),
    `data.validation_fraction`.
  * 'vqav2' (and OK-VQA): `data.question_file`, `data.annotation_file`, `data.image_dir`,
    `data.image_template` for training; the same with `validation_` for evaluation.
  * 'textvqa', 'stvqa', 'docvqa': `data.annotation_file`, `data.image_dir` (TextVQA also
    `data.image_template`); the same with `validation_` for evaluation.
Then `data.normalization`, `data.prompt` (before each question), the lengths, and the vocabulary
fields of `model`. Evaluation decodes every validation question and scores it with the task's own
metric (VQA accuracy against all human answers; ANLS for ST-VQA and DocVQA).
"""

from __future__ import annotations

from adalink import config_fields as cf
from adalink.data.families import base

DATASETS = ("vqa_json", "vqav2", "textvqa", "stvqa", "docvqa")


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
    elif dataset != "vqav2":
      splits = {}
      for split, prefix in (("train", ""), ("validation", "validation_")):
        entry = (
          cf.existing_path(config, f"data.{prefix}annotation_file"),
          cf.existing_path(config, f"data.{prefix}image_dir"),
        )
        if dataset == "textvqa":
          entry += (cf.require(config, f"data.{prefix}image_template"),)
        splits[split] = entry
      task = vqa.get_data_list_task(dataset, splits, **kw)
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
