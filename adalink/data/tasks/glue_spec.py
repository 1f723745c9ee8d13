"""What each GLUE task is in T5's text-to-text form: fields, label words, files, postprocessing, metrics.

Pure Python (no TensorFlow), so evaluation code can map decoded text to labels and score it without
building a seqio pipeline. ``glue.py`` turns these specs into seqio Tasks.

Conventions (T5's):
- inputs are ``"<task> <field>: <text> <field>: <text>"`` with the fields in alphabetical order
  (hence ``mnli hypothesis: ... premise: ...``);
- targets are label words, or for STS-B the score rounded to the nearest 0.2 as a string ("3.8");
- a prediction that is not one of the label words becomes -1 and counts as wrong; an STS-B prediction
  that is not a finite number becomes ``STSB_FALLBACK`` (0.0).

Label ids are those of TFDS ``glue/*`` (e.g. MNLI: 0 entailment, 1 neutral, 2 contradiction), so both
data sources produce identical examples.

``GLUE_TASKS`` is the stable task list: an example's ``task_id`` is its task's index there (MNLI's
matched/mismatched evaluation variants share MNLI's id). Append new tasks at the end only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

from adalink.data.metrics import classification as metrics_lib

GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")

STSB_FALLBACK = 0.0

MetricFn = Callable[..., dict]


@dataclasses.dataclass(frozen=True)
class GlueTaskSpec:
  """One GLUE task (or an evaluation-only view of one, such as ``mnli_matched``)."""

  name: str
  benchmark: str  # the input prefix and the TFDS config name
  text_fields: tuple[str, ...]  # TFDS feature names, in the order they appear in the inputs
  label_names: tuple[str, ...] | None  # None for the regression task (STS-B)
  metric_names: tuple[str, ...]
  tsv_dir: str  # folder inside glue_data/
  tsv_split_files: Mapping[str, str]  # split -> file name inside tsv_dir
  # Where each text field and the label sit in the train/dev files: header names, or column
  # indices for header-less files (CoLA).
  tsv_columns: Mapping[str, str | int]
  tsv_label_column: str | int
  tsv_has_header: bool = True
  tsv_num_fields: int | None = None  # required for header-less files
  tsv_test_columns: Mapping[str, str] | None = None  # test files' header names, if they differ
  tfds_splits: Mapping[str, str] | None = None  # split -> TFDS split; None: same names
  # Whether this set's headline metric (the first of `metric_names`) counts in the GLUE average;
  # False for a second view of a task already counted (MNLI mismatched: MNLI counts once).
  in_average: bool = True

  @property
  def task_id(self) -> int:
    return GLUE_TASKS.index(self.benchmark)

  @property
  def is_regression(self) -> bool:
    return self.label_names is None

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(self.tsv_split_files)

  def target_text(self, label: float | int) -> str:
    """The target string for a label id (or an STS-B score), as the seqio task writes it."""
    if self.is_regression:
      return f"{stsb_round(label):.1f}"
    if label == -1:
      return "<unk>"  # unlabeled test rows, as in T5
    return self.label_names[int(label)]

  def postprocess_fn(
    self, text: str | bytes, example: Mapping[str, Any] | None = None, is_target: bool = False
  ) -> float | int:
    """Decoded text -> label id (or STS-B score); the seqio ``postprocess_fn`` signature.

    For targets with the example at hand the example's own label is used, so STS-B is scored
    against the unrounded gold score as in the official GLUE evaluation.
    """
    if is_target and example is not None and "label" in example:
      label = example["label"]
      return float(label) if self.is_regression else int(label)
    if isinstance(text, bytes):
      text = text.decode("utf-8", errors="replace")
    text = text.strip()
    if self.is_regression:
      try:
        value = float(text)
      except ValueError:
        return STSB_FALLBACK
      return value if math.isfinite(value) else STSB_FALLBACK
    try:
      return self.label_names.index(text)
    except ValueError:
      return -1

  def postprocess_fn_for(self, spell: Callable[[str], str]) -> Callable[..., float | int]:
    """``postprocess_fn`` that also reads each label the way a vocabulary spells it back.

    ``spell(text)`` is the vocabulary's decode of its own encoding of ``text``. A vocabulary with
    no piece for "_" (e.g. one trained on plain English) decodes the target "not_equivalent" as
    "not ⁇ equivalent"; a model that writes exactly that has predicted the label.
    """
    if self.is_regression:
      return self.postprocess_fn
    spelled = {}
    for label, name in enumerate(self.label_names):
      text = spell(name).strip()
      if text in spelled and spelled[text] != label:
        raise ValueError(
          f"GLUE {self.name}: the vocabulary spells labels {self.label_names[spelled[text]]!r} "
          f"and {name!r} alike ({text!r}), so predictions cannot tell them apart"
        )
      spelled[text] = label

    def postprocess(text, example=None, is_target=False):
      value = self.postprocess_fn(text, example=example, is_target=is_target)
      if value != -1 or is_target:
        return value
      if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
      return spelled.get(text.strip(), -1)

    return postprocess

  @property
  def metric_fns(self) -> list[MetricFn]:
    """Functions ``(targets, predictions) -> {name: value in percent}`` for this task."""
    return [_METRIC_FNS[m] for m in self.metric_names]


def stsb_round(score: float) -> float:
  """Rounds to the nearest 0.2 the way T5's STS-B preprocessor does (float32, ties to even)."""
  import numpy as np  # local: keeps module import light for callers that only need the specs

  five = np.float32(5)
  return float(np.round(np.float32(score) * five) / five)


def _accuracy(targets, predictions) -> dict:
  return metrics_lib.percent({"accuracy": metrics_lib.accuracy(targets, predictions)})


def _f1(targets, predictions) -> dict:
  return metrics_lib.percent({"f1": metrics_lib.f1_binary(targets, predictions, positive=1)})


def _mcc(targets, predictions) -> dict:
  return metrics_lib.percent(
    {"matthews_corrcoef": metrics_lib.matthews_corrcoef(targets, predictions)}
  )


def _pearson(targets, predictions) -> dict:
  return metrics_lib.percent(
    {"pearson_corrcoef": metrics_lib.pearson_corrcoef(targets, predictions)}
  )


def _spearman(targets, predictions) -> dict:
  return metrics_lib.percent(
    {"spearman_corrcoef": metrics_lib.spearman_corrcoef(targets, predictions)}
  )


_METRIC_FNS: dict[str, MetricFn] = {
  "accuracy": _accuracy,
  "f1": _f1,
  "matthews_corrcoef": _mcc,
  "pearson_corrcoef": _pearson,
  "spearman_corrcoef": _spearman,
}

_TRAIN_DEV_TEST = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
_NLI_LABELS = ("entailment", "not_entailment")

_SPECS = [
  GlueTaskSpec(
    name="cola",
    benchmark="cola",
    text_fields=("sentence",),
    label_names=("unacceptable", "acceptable"),
    metric_names=("matthews_corrcoef",),
    tsv_dir="CoLA",
    tsv_split_files=_TRAIN_DEV_TEST,
    # Original layout: source, label, original label mark, sentence; no header line.
    tsv_columns={"sentence": 3},
    tsv_label_column=1,
    tsv_has_header=False,
    tsv_num_fields=4,
    tsv_test_columns={"sentence": "sentence"},
  ),
  GlueTaskSpec(
    name="sst2",
    benchmark="sst2",
    text_fields=("sentence",),
    label_names=("negative", "positive"),
    metric_names=("accuracy",),
    tsv_dir="SST-2",
    tsv_split_files=_TRAIN_DEV_TEST,
    tsv_columns={"sentence": "sentence"},
    tsv_label_column="label",
  ),
  GlueTaskSpec(
    name="mrpc",
    benchmark="mrpc",
    text_fields=("sentence1", "sentence2"),
    label_names=("not_equivalent", "equivalent"),
    metric_names=("accuracy", "f1"),
    tsv_dir="MRPC",
    tsv_split_files=_TRAIN_DEV_TEST,
    tsv_columns={"sentence1": "#1 String", "sentence2": "#2 String"},
    tsv_label_column="Quality",
  ),
  GlueTaskSpec(
    name="qqp",
    benchmark="qqp",
    text_fields=("question1", "question2"),
    label_names=("not_duplicate", "duplicate"),
    metric_names=("accuracy", "f1"),
    tsv_dir="QQP",
    tsv_split_files=_TRAIN_DEV_TEST,
    tsv_columns={"question1": "question1", "question2": "question2"},
    tsv_label_column="is_duplicate",
  ),
  GlueTaskSpec(
    name="stsb",
    benchmark="stsb",
    text_fields=("sentence1", "sentence2"),
    label_names=None,
    metric_names=("pearson_corrcoef", "spearman_corrcoef"),
    tsv_dir="STS-B",
    tsv_split_files=_TRAIN_DEV_TEST,
    tsv_columns={"sentence1": "sentence1", "sentence2": "sentence2"},
    tsv_label_column="score",
  ),
  GlueTaskSpec(
    name="mnli",
    benchmark="mnli",
    text_fields=("hypothesis", "premise"),
    label_names=("entailment", "neutral", "contradiction"),
    metric_names=("accuracy",),
    tsv_dir="MNLI",
    tsv_split_files={
      "train": "train.tsv",
      "validation_matched": "dev_matched.tsv",
      "validation_mismatched": "dev_mismatched.tsv",
      "test_matched": "test_matched.tsv",
      "test_mismatched": "test_mismatched.tsv",
    },
    tsv_columns={"premise": "sentence1", "hypothesis": "sentence2"},
    tsv_label_column="gold_label",
  ),
  GlueTaskSpec(
    name="qnli",
    benchmark="qnli",
    text_fields=("question", "sentence"),
    label_names=_NLI_LABELS,
    metric_names=("accuracy",),
    tsv_dir="QNLI",
    tsv_split_files=_TRAIN_DEV_TEST,
    tsv_columns={"question": "question", "sentence": "sentence"},
    tsv_label_column="label",
  ),
  GlueTaskSpec(
    name="rte",
    benchmark="rte",
    text_fields=("sentence1", "sentence2"),
    label_names=_NLI_LABELS,
    metric_names=("accuracy",),
    tsv_dir="RTE",
    tsv_split_files=_TRAIN_DEV_TEST,
    tsv_columns={"sentence1": "sentence1", "sentence2": "sentence2"},
    tsv_label_column="label",
  ),
]

_BY_NAME = {s.name: s for s in _SPECS}
_MNLI = _BY_NAME["mnli"]
# Evaluation-only views of MNLI whose "validation"/"test" splits are the matched or mismatched files,
# for evaluation code that expects one "validation" split per task.
for _kind in ("matched", "mismatched"):
  _BY_NAME[f"mnli_{_kind}"] = dataclasses.replace(
    _MNLI,
    name=f"mnli_{_kind}",
    tsv_split_files={"validation": f"dev_{_kind}.tsv", "test": f"test_{_kind}.tsv"},
    tfds_splits={"validation": f"validation_{_kind}", "test": f"test_{_kind}"},
    in_average=_kind == "matched",
  )

GLUE_TASK_NAMES = tuple(_BY_NAME)  # the 8 tasks plus the two MNLI evaluation views


def get_spec(name: str) -> GlueTaskSpec:
  """The spec of a GLUE task by name; ValueError naming the valid names otherwise."""
  try:
    return _BY_NAME[name]
  except (KeyError, TypeError):
    raise ValueError(f"unknown GLUE task {name!r}; expected one of {GLUE_TASK_NAMES}") from None


def task_id(name: str) -> int:
  """The ``task_id`` examples of this task carry (index into ``GLUE_TASKS``)."""
  return get_spec(name).task_id
