"""`data.kind = 'captioning'`: image captioning (any "images + captions JSON", COCO Karpathy,
TextCaps) for a model that reads images.

Fields: `data.dataset` ('image_captions', 'coco_karpathy' or 'textcaps'), `data.annotation_file`,
`data.image_dir`, `data.validation_annotation_file` (TextCaps), `data.validation_fraction`
('image_captions'), `data.normalization`, `data.prompt`, the lengths, and the vocabulary fields of
`model`. Images are resized to the model's image size. Evaluation decodes every image of the
`eval.split` split and scores CIDEr-D against all its references (the task's own metric); the
configs follow the paper: COCO on the Karpathy test split, TextCaps on validation, whose file is
found beside `TextCaps_<version>_train.json` unless `data.validation_annotation_file` names it.
"""

from __future__ import annotations

import os

from adalink import config_fields as cf
from adalink.data.families import base

DATASETS = ("image_captions", "coco_karpathy", "textcaps")


class CaptioningFamily(base.SeqioFamily):
  name = "captioning"
  input_streams = ("image", "text")
  evaluation = "decode"
  examples_to_show = 3

  def build(self, config, model: base.ModelFacts) -> base.Data:
    from adalink.data.tasks import captioning

    if model.image_size is None:
      raise ValueError("config.data.kind='captioning' needs a model that reads images")
    dataset = cf.one_of(config, "data.dataset", DATASETS)
    vocabulary = base.vocabulary(config, model)
    lengths = base.lengths(config)
    ann = cf.existing_path(config, "data.annotation_file")
    kw = dict(
      vocabulary=vocabulary,
      image_size=model.image_size,
      normalization=cf.require(config, "data.normalization"),
      prompt=cf.require(config, "data.prompt"),
    )
    if dataset == "image_captions":
      image_dir = cf.require(config, "data.image_dir") or None
      task = captioning.get_image_caption_task(
        ann,
        cf.resolve_path(image_dir) if image_dir else None,
        validation_fraction=float(cf.require(config, "data.validation_fraction")),
        **kw,
      )
    elif dataset == "coco_karpathy":
      task = captioning.get_coco_karpathy_task(
        ann, cf.existing_path(config, "data.image_dir"), **kw
      )
    else:
      splits = {"train": ann}
      if cf.require(config, "data.validation_annotation_file"):
        splits["validation"] = cf.existing_path(config, "data.validation_annotation_file")
      elif textcaps_validation_file(ann):
        splits["validation"] = textcaps_validation_file(ann)
      task = captioning.get_textcaps_task(splits, cf.existing_path(config, "data.image_dir"), **kw)
    return base.Data(self.name, self, vocabulary, task, {dataset: task}, lengths)


def textcaps_validation_file(train_file: str):
  """TextCaps ships `TextCaps_<version>_train.json` and `..._val.json` side by side: the
  validation file beside a train file of that name, when it is there (else None)."""
  folder, name = os.path.split(train_file)
  if not name.endswith("_train.json"):
    return None
  candidate = os.path.join(folder, name[: -len("_train.json")] + "_val.json")
  return candidate if os.path.exists(candidate) else None


FAMILY = base.register(CaptioningFamily())
