"""seqio Tasks for image captioning: COCO Karpathy splits, TextCaps, and any "images + captions JSON".

Each example: ``image`` float32 [H, W, 3] (decoded, resized to the model's resolution, normalised),
``inputs`` (a fixed text prompt), ``targets`` (one caption), ``references`` (every caption of the
image, for evaluation) and ``image_id``. Training splits give one example per (image, caption) pair;
the other splits give one example per image, with its first caption as ``targets``.

The metric is CIDEr-D (``adalink.data.metrics.cider``) over PTB-tokenised text, reported x100 as in the
papers' tables; ``postprocess_fn`` returns the prediction text, and for targets the reference list.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from adalink.data.tasks import caption_annotations as ann
from adalink.data.metrics import cider
from adalink.data.tasks import records_source, registry
from adalink.data.pipeline.vocab import get_vocabulary, vocabulary_fingerprint

NORMALIZATIONS = ("minus_one_to_one", "zero_one", "imagenet")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_PROMPT = "caption en"
TRAIN_SPLITS = ("train",)  # splits expanded to one example per caption


def image_hw_of(image_size: int | Sequence[int]) -> tuple[int, int]:
  if isinstance(image_size, int):
    hw = (image_size, image_size)
  else:
    hw = tuple(int(s) for s in image_size)
  if len(hw) != 2 or min(hw) <= 0:
    raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}")
  return hw


class CaptionDataSource(records_source.RecordsDataSource):
  """Caption records per split: one row per (image, caption) pair in training splits, one per
  image (with its first caption) in the others."""

  def __init__(
    self,
    records_by_split: Mapping[str, Sequence[ann.CaptionRecord]],
    train_splits: Sequence[str] = TRAIN_SPLITS,
  ):
    self._train_splits = tuple(train_splits)
    super().__init__(records_by_split)

  def rows(self, split: str) -> list[tuple[ann.CaptionRecord, str]]:
    records = self.records(split)
    if split in self._train_splits:
      return [(r, c) for r in records for c in r.captions]
    return [(r, r.captions[0] if r.captions else "") for r in records]

  def columns(self, rows):
    return {
      "image_path": records_source.string_column([r.image_path for r, _ in rows]),
      "image_id": records_source.string_column([r.image_id for r, _ in rows]),
      "caption": records_source.string_column([c for _, c in rows]),
      "references": records_source.ragged_string_column([r.captions for r, _ in rows]),
    }


def load_image(path: tf.Tensor, image_hw: tuple[int, int], normalization: str) -> tf.Tensor:
  """Reads, decodes (JPEG/PNG/GIF/BMP, forced to RGB), resizes and normalises one image."""
  raw = tf.io.read_file(path)
  image = tf.io.decode_image(raw, channels=3, expand_animations=False)
  image = tf.image.resize(tf.cast(image, tf.float32), image_hw, method="bilinear", antialias=True)
  image = tf.clip_by_value(image, 0.0, 255.0)
  if normalization == "minus_one_to_one":  # ViT / PaLI convention
    image = image / 127.5 - 1.0
  elif normalization == "zero_one":
    image = image / 255.0
  else:
    image = (image / 255.0 - tf.constant(_IMAGENET_MEAN)) / tf.constant(_IMAGENET_STD)
  image.set_shape([image_hw[0], image_hw[1], 3])
  return image


def _to_caption_example(image_hw: tuple[int, int], normalization: str, prompt: str):
  @seqio.map_over_dataset
  def fn(ex):
    return {
      "image": load_image(ex["image_path"], image_hw, normalization),
      "inputs": tf.constant(prompt),
      "targets": ex["caption"],
      "references": ex["references"],
      "image_id": ex["image_id"],
    }

  return fn


def tokenize_text(dataset: tf.data.Dataset, output_features) -> tf.data.Dataset:
  # Only the text features go through the vocabulary; the image is already a float tensor.
  text = {k: v for k, v in output_features.items() if k in ("inputs", "targets")}
  return seqio.preprocessors.tokenize(dataset, text)


def caption_postprocess_fn(text, example=None, is_target: bool = False):
  """Prediction -> stripped text; target (with its example) -> the list of all references."""
  if is_target and example is not None and "references" in example:
    return [
      r.decode("utf-8") if isinstance(r, bytes) else str(r)
      for r in np.asarray(example["references"]).tolist()
    ]
  if isinstance(text, bytes):
    text = text.decode("utf-8", errors="replace")
  text = str(text).strip()
  return [text] if is_target else text


def cider_d_metric(targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict:
  """{"cider_d": corpus CIDEr-D x 100}, PTB-tokenising both sides first."""
  refs = {i: list(r) for i, r in enumerate(targets)}
  cands = {i: p for i, p in enumerate(predictions)}
  score, _ = cider.cider_d(cands, refs, tokenize=True)
  return {"cider_d": 100.0 * score}


def _build_task(
  base: str,
  config: dict,
  records_by_split,
  vocabulary,
  image_size,
  normalization: str,
  prompt: str,
  check_images: bool,
) -> seqio.Task:
  if normalization not in NORMALIZATIONS:
    raise ValueError(f"unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}")
  image_hw = image_hw_of(image_size)
  vocabulary = vocabulary or get_vocabulary("byte")
  if check_images:
    for split, records in records_by_split.items():
      ann.check_images_exist(records, f"{base} split {split!r}")
  config = {
    **config,
    "image_hw": image_hw,
    "normalization": normalization,
    "prompt": prompt,
    "vocab": vocabulary_fingerprint(vocabulary),
  }
  features = {
    "inputs": seqio.Feature(vocabulary, add_eos=True),
    "targets": seqio.Feature(vocabulary, add_eos=True),
    "image": seqio.ContinuousFeature(dtype=tf.float32, rank=3),
  }

  def build(name: str) -> seqio.Task:
    return seqio.Task(
      name,
      source=CaptionDataSource(records_by_split),
      output_features=features,
      preprocessors=[
        _to_caption_example(image_hw, normalization, prompt),
        tokenize_text,
        seqio.preprocessors.append_eos_after_trim,
      ],
      postprocess_fn=caption_postprocess_fn,
      metric_fns=[cider_d_metric],
      # Sources shuffle fully; this buffer holds decoded images, so keep it small.
      shuffle_buffer_size=64,
    )

  return registry.get_or_register_task(base, config, build)


def get_coco_karpathy_task(
  annotation_file: str | os.PathLike,
  image_dir: str | os.PathLike,
  vocabulary: seqio.Vocabulary | None = None,
  *,
  image_size: int | Sequence[int] = 224,
  normalization: str = "minus_one_to_one",
  prompt: str = DEFAULT_PROMPT,
  include_restval: bool = True,
  check_images: bool = True,
) -> seqio.Task:
  """COCO captioning on Karpathy's splits (``train`` includes ``restval`` by default)."""
  annotation_file = os.path.abspath(annotation_file)
  image_dir = os.path.abspath(image_dir)
  records = {
    s: ann.load_karpathy(annotation_file, image_dir, s, include_restval)
    for s in ("train", "validation", "test")
  }
  config = {"ann": annotation_file, "images": image_dir, "restval": include_restval}
  return _build_task(
    "adalink_coco_karpathy",
    config,
    records,
    vocabulary,
    image_size,
    normalization,
    prompt,
    check_images,
  )


def get_textcaps_task(
  annotation_files: Mapping[str, str | os.PathLike],
  image_dir: str | os.PathLike,
  vocabulary: seqio.Vocabulary | None = None,
  *,
  image_size: int | Sequence[int] = 224,
  normalization: str = "minus_one_to_one",
  prompt: str = DEFAULT_PROMPT,
  check_images: bool = True,
) -> seqio.Task:
  """TextCaps from ``{split: TextCaps_0.1_<split>.json}`` (e.g. train/validation/test)."""
  if not annotation_files:
    raise ValueError("annotation_files must map at least one split to a TextCaps JSON file")
  image_dir = os.path.abspath(image_dir)
  files = {s: os.path.abspath(p) for s, p in annotation_files.items()}
  records = {s: ann.load_textcaps(p, image_dir) for s, p in files.items()}
  config = {"ann": files, "images": image_dir}
  return _build_task(
    "adalink_textcaps", config, records, vocabulary, image_size, normalization, prompt, check_images
  )


def get_image_caption_task(
  annotation_file: str | os.PathLike,
  image_dir: str | os.PathLike | None = None,
  vocabulary: seqio.Vocabulary | None = None,
  *,
  image_size: int | Sequence[int] = 224,
  normalization: str = "minus_one_to_one",
  prompt: str = DEFAULT_PROMPT,
  validation_fraction: float = 0.1,
  check_images: bool = True,
) -> seqio.Task:
  """A task over any "images + captions JSON" folder; splits ``all``, ``train``, ``validation``.

  ``all`` holds every image (one example per image with all references), e.g. to score a whole
  folder; see ``caption_annotations.load_image_captions`` for how train/validation are drawn.
  """
  annotation_file = os.path.abspath(annotation_file)
  image_dir = os.path.abspath(image_dir) if image_dir is not None else None
  records = ann.load_image_captions(annotation_file, image_dir, validation_fraction)
  config = {"ann": annotation_file, "images": image_dir, "val_frac": validation_fraction}
  return _build_task(
    "adalink_image_captions",
    config,
    records,
    vocabulary,
    image_size,
    normalization,
    prompt,
    check_images,
  )


def references_for(task: seqio.Task, split: str) -> list[list[str]]:
  """All reference captions per example of an evaluation split, in unshuffled order."""
  source = task.source
  if not isinstance(source, CaptionDataSource):
    raise TypeError(f"{task.name!r} is not a captioning task from this module")
  if split in source._train_splits:
    raise ValueError(
      f"split {split!r} has one example per caption; references are per image "
      f"only in evaluation splits"
    )
  return [list(r.captions) for r in source.records(split)]
