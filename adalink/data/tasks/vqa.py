"""seqio Tasks for visual question answering: VQA v2 / OK-VQA, TextVQA, ST-VQA, DocVQA and any
"images + questions JSON" (`adalink.data.tasks.vqa_annotations`).

Each example: ``image`` float32 [H, W, 3] (decoded, resized, normalised as for captioning),
``inputs`` = the prompt and the question (PaliGemma's ``answer en <question>``), ``targets`` = the
training answer, ``answers`` (every human answer, for evaluation) and ``question_id``. The metric
is the VQA accuracy against all human answers, x100, or for ST-VQA and DocVQA the ANLS x100
(``adalink.data.metrics.vqa``);
``postprocess_fn`` returns the prediction text, and for targets the list of human answers.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from adalink.data.metrics import vqa as vqa_metrics
from adalink.data.pipeline.vocab import get_vocabulary, vocabulary_fingerprint
from adalink.data.tasks import captioning, records_source, registry
from adalink.data.tasks import vqa_annotations as ann

DEFAULT_PROMPT = "answer en"


class VqaDataSource(records_source.RecordsDataSource):
  """VQA records per split, one row per question."""

  def columns(self, rows):
    return {
      "image_path": records_source.string_column([r.image_path for r in rows]),
      "question_id": records_source.string_column([r.question_id for r in rows]),
      "question": records_source.string_column([r.question for r in rows]),
      "target": records_source.string_column([r.target for r in rows]),
      "answers": records_source.ragged_string_column([r.answers for r in rows]),
    }


def _to_vqa_example(image_hw, normalization: str, prompt: str):
  @seqio.map_over_dataset
  def fn(ex):
    return {
      "image": captioning.load_image(ex["image_path"], image_hw, normalization),
      "inputs": tf.strings.join([prompt, ex["question"]], separator=" "),
      "targets": ex["target"],
      "answers": ex["answers"],
      "question_id": ex["question_id"],
    }

  return fn


def vqa_postprocess_fn(text, example=None, is_target: bool = False):
  """Prediction -> stripped text; target (with its example) -> every human answer."""
  if is_target and example is not None and "answers" in example:
    return [
      a.decode("utf-8") if isinstance(a, bytes) else str(a)
      for a in np.asarray(example["answers"]).tolist()
    ]
  if isinstance(text, bytes):
    text = text.decode("utf-8", errors="replace")
  text = str(text).strip()
  return [text] if is_target else text


def _build_task(
  base, config, records_by_split, vocabulary, image_size, normalization, prompt, metric=None
):
  if normalization not in captioning.NORMALIZATIONS:
    raise ValueError(
      f"unknown normalization {normalization!r}; expected one of {captioning.NORMALIZATIONS}"
    )
  image_hw = captioning.image_hw_of(image_size)
  vocabulary = vocabulary or get_vocabulary("byte")
  for split, records in records_by_split.items():
    missing = [r.image_path for r in records if not os.path.isfile(r.image_path)]
    if missing:
      raise FileNotFoundError(
        f"{base} split {split!r}: {len(missing)} image(s) not found, first {missing[0]!r}"
      )
  config = {
    **config,
    "image_hw": image_hw,
    "normalization": normalization,
    "prompt": prompt,
    "vocab": vocabulary_fingerprint(vocabulary),
    "metric": getattr(metric, "__name__", "vqa_accuracy_metric"),
  }
  features = {
    "inputs": seqio.Feature(vocabulary, add_eos=True),
    "targets": seqio.Feature(vocabulary, add_eos=True),
    "image": seqio.ContinuousFeature(dtype=tf.float32, rank=3),
  }

  def build(name: str) -> seqio.Task:
    return seqio.Task(
      name,
      source=VqaDataSource(records_by_split),
      output_features=features,
      preprocessors=[
        _to_vqa_example(image_hw, normalization, prompt),
        captioning.tokenize_text,
        seqio.preprocessors.append_eos_after_trim,
      ],
      postprocess_fn=vqa_postprocess_fn,
      metric_fns=[metric or vqa_metrics.vqa_accuracy_metric],
      shuffle_buffer_size=64,
    )

  return registry.get_or_register_task(base, config, build)


def get_vqa_json_task(
  annotation_file: str | os.PathLike,
  image_dir: str | os.PathLike | None = None,
  vocabulary: seqio.Vocabulary | None = None,
  *,
  image_size: int | Sequence[int] = 224,
  normalization: str = "minus_one_to_one",
  prompt: str = DEFAULT_PROMPT,
  validation_fraction: float = 0.25,
) -> seqio.Task:
  """A task over any "images + questions JSON"; splits ``all``, ``train``, ``validation``."""
  annotation_file = os.path.abspath(annotation_file)
  image_dir = os.path.abspath(image_dir) if image_dir else None
  records = ann.load_vqa_json(annotation_file, image_dir, validation_fraction)
  config = {"ann": annotation_file, "images": image_dir, "val_frac": validation_fraction}
  return _build_task(
    "adalink_vqa_json", config, records, vocabulary, image_size, normalization, prompt
  )


def get_vqav2_task(
  splits: Mapping[str, tuple],
  vocabulary: seqio.Vocabulary | None = None,
  *,
  image_size: int | Sequence[int] = 224,
  normalization: str = "minus_one_to_one",
  prompt: str = DEFAULT_PROMPT,
) -> seqio.Task:
  """VQA v2 / OK-VQA from ``{split: (questions_file, annotations_file, image_dir,
  image_template)}`` (e.g. train2014 and val2014 images live apart and are named apart)."""
  splits = {
    s: (os.path.abspath(q), os.path.abspath(a), os.path.abspath(d), t)
    for s, (q, a, d, t) in splits.items()
  }
  records = {s: ann.load_vqav2(q, a, d, t) for s, (q, a, d, t) in splits.items()}
  config = {"splits": {s: list(v) for s, v in splits.items()}}
  return _build_task(
    "adalink_vqav2", config, records, vocabulary, image_size, normalization, prompt
  )


def get_data_list_task(
  dataset: str,
  splits: Mapping[str, tuple],
  vocabulary: seqio.Vocabulary | None = None,
  *,
  image_size: int | Sequence[int] = 224,
  normalization: str = "minus_one_to_one",
  prompt: str = DEFAULT_PROMPT,
) -> seqio.Task:
  """TextVQA, ST-VQA or DocVQA from ``{split: (annotation_file, image_dir)}`` (TextVQA: plus an
  image name template); scored by VQA accuracy (TextVQA) or ANLS (ST-VQA, DocVQA), as the
  datasets' own evaluations do."""
  if dataset not in ann.DATA_LIST_READERS:
    raise ValueError(f"unknown VQA dataset {dataset!r}; known: {sorted(ann.DATA_LIST_READERS)}")
  read = ann.DATA_LIST_READERS[dataset]
  splits = {s: (os.path.abspath(v[0]), os.path.abspath(v[1]), *v[2:]) for s, v in splits.items()}
  records = {s: read(*v) for s, v in splits.items()}
  metric = vqa_metrics.anls_metric if dataset in ann.ANLS_DATASETS else None
  config = {"dataset": dataset, "splits": {s: list(v) for s, v in splits.items()}}
  return _build_task(
    f"adalink_{dataset}", config, records, vocabulary, image_size, normalization, prompt, metric
  )
