"""Readers of visual question answering files into (question, image, answers) records.

Pure Python, so evaluation code can load the human answers without TensorFlow. The formats:

- VQA v2 (and OK-VQA, which shares it): a questions file ``{"questions": [{"question_id",
  "image_id", "question"}]}`` and an annotations file ``{"annotations": [{"question_id",
  "answers": [{"answer", ...}] (ten), "multiple_choice_answer"?}]}``; the image of id N is
  ``<image_dir>/<image_template with N>`` (COCO's ``COCO_val2014_{:012d}.jpg`` by default).
- Generic "images + questions JSON": ``{"questions": [{"file_name", "question", "answers": [...],
  "question_id"?, "split"?}]}`` or a bare list of such entries, image paths relative to
  ``image_dir`` (default: the JSON's folder).
- TextVQA, ST-VQA and DocVQA: their releases' ``{"data": [...]}`` files (`load_textvqa`,
  `load_stvqa`, `load_docvqa`); test splits without answers load with none.

The training target of a question is its ``multiple_choice_answer`` when the file gives one, else
the answer most humans gave (ties to the first given); evaluation scores the prediction against all
of them with the VQA accuracy (``adalink.data.metrics.vqa``).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Mapping, Sequence

from adalink.data.tasks.caption_annotations import ALL_SPLIT, hash_fraction

COCO_TEMPLATE = "COCO_val2014_{:012d}.jpg"


@dataclasses.dataclass(frozen=True)
class VqaRecord:
  question_id: str
  image_path: str
  question: str
  answers: tuple[str, ...]
  target: str


def _load_json(path: str | os.PathLike, what: str) -> Any:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"VQA {what} file not found: {os.fspath(path)!r}")
  with open(path, encoding="utf-8") as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{os.fspath(path)}: not valid JSON ({e})") from None


def _text(value: Any, where: str, what: str) -> str:
  if not isinstance(value, str) or not value.strip():
    raise ValueError(f"{where}: {what} must be a non-empty string, got {value!r}")
  return " ".join(value.split())


def _answers(raw: Any, where: str) -> tuple[str, ...]:
  if not isinstance(raw, list) or not raw:
    raise ValueError(f"{where}: 'answers' must be a non-empty list, got {raw!r}")
  out = []
  for j, a in enumerate(raw):
    a = a.get("answer") if isinstance(a, Mapping) else a
    out.append(_text(a, f"{where}: answers[{j}]", "an answer"))
  return tuple(out)


def most_common(answers: Sequence[str]) -> str:
  """The answer given most often (the first given among equals)."""
  counts = collections.Counter(answers)
  return max(answers, key=lambda a: (counts[a], -answers.index(a)))


def load_vqa_json(
  annotation_file: str | os.PathLike,
  image_dir: str | os.PathLike | None = None,
  validation_fraction: float = 0.25,
) -> dict[str, list[VqaRecord]]:
  """Records of a generic questions JSON by split (``all``, ``train``, ``validation``): entries
  with a ``split`` go there (``val`` read as ``validation``), the others to ``validation`` with
  probability ``validation_fraction`` by a stable hash of the image file, so every question on
  one image lands in the same split."""
  if not 0.0 <= validation_fraction <= 1.0:
    raise ValueError(f"validation_fraction must be in [0, 1], got {validation_fraction!r}")
  path = os.fspath(annotation_file)
  data = _load_json(path, "questions")
  entries = data.get("questions") if isinstance(data, dict) else data
  if not isinstance(entries, list):
    raise ValueError(f"{path}: expected {{'questions': [...]}} or a list")
  image_dir = os.fspath(image_dir) if image_dir else os.path.dirname(os.path.abspath(path))
  splits: dict[str, list[VqaRecord]] = {ALL_SPLIT: [], "train": [], "validation": []}
  seen = set()
  for i, entry in enumerate(entries):
    where = f"{path}: questions[{i}]"
    if not isinstance(entry, Mapping):
      raise ValueError(f"{where}: each entry must be an object")
    for key in ("file_name", "question", "answers"):
      if key not in entry:
        raise ValueError(
          f"{where}: missing {key!r} (each entry needs file_name, question, answers)"
        )
    qid = str(entry.get("question_id", i))
    if qid in seen:
      raise ValueError(f"{where}: duplicate question_id {qid!r}")
    seen.add(qid)
    answers = _answers(entry["answers"], where)
    record = VqaRecord(
      qid,
      os.path.join(image_dir, _text(entry["file_name"], where, "file_name")),
      _text(entry["question"], where, "question"),
      answers,
      most_common(answers),
    )
    splits[ALL_SPLIT].append(record)
    if "split" in entry:
      name = "validation" if entry["split"] == "val" else str(entry["split"])
    else:
      name = "validation" if hash_fraction(entry["file_name"]) < validation_fraction else "train"
    splits.setdefault(name, []).append(record)
  return splits


def load_vqav2(
  questions_file: str | os.PathLike,
  annotations_file: str | os.PathLike | None,
  image_dir: str | os.PathLike,
  image_template: str = COCO_TEMPLATE,
) -> list[VqaRecord]:
  """Records of one VQA v2 / OK-VQA split; without annotations (a test split) answers are empty."""
  qpath = os.fspath(questions_file)
  questions = _load_json(qpath, "questions")
  if not isinstance(questions, dict) or not isinstance(questions.get("questions"), list):
    raise ValueError(f"{qpath}: expected {{'questions': [...]}}")
  answers_by_qid: dict[str, tuple[tuple[str, ...], str]] = {}
  if annotations_file is not None:
    apath = os.fspath(annotations_file)
    ann = _load_json(apath, "annotations")
    if not isinstance(ann, dict) or not isinstance(ann.get("annotations"), list):
      raise ValueError(f"{apath}: expected {{'annotations': [...]}}")
    for i, a in enumerate(ann["annotations"]):
      where = f"{apath}: annotations[{i}]"
      if not isinstance(a, Mapping) or "question_id" not in a:
        raise ValueError(f"{where}: needs 'question_id' and 'answers'")
      answers = _answers(a.get("answers"), where)
      target = a.get("multiple_choice_answer")
      target = _text(target, where, "multiple_choice_answer") if target else most_common(answers)
      answers_by_qid[str(a["question_id"])] = (answers, target)
  records = []
  for i, q in enumerate(questions["questions"]):
    where = f"{qpath}: questions[{i}]"
    if not isinstance(q, Mapping) or not {"question_id", "image_id", "question"} <= set(q):
      raise ValueError(f"{where}: needs 'question_id', 'image_id' and 'question'")
    qid = str(q["question_id"])
    if annotations_file is not None and qid not in answers_by_qid:
      raise ValueError(f"{where}: question_id {qid} has no entry in {os.fspath(annotations_file)}")
    answers, target = answers_by_qid.get(qid, ((), ""))
    image = os.path.join(os.fspath(image_dir), image_template.format(int(q["image_id"])))
    records.append(VqaRecord(qid, image, _text(q["question"], where, "question"), answers, target))
  return records


def _data_list(path: str, what: str) -> list:
  data = _load_json(path, what)
  if not isinstance(data, dict) or not isinstance(data.get("data"), list):
    raise ValueError(f"{path}: expected {{'data': [...]}} ({what})")
  return data["data"]


def _record(entry, where, qid_key, image_path, allow_no_answers) -> VqaRecord:
  if not isinstance(entry, Mapping) or "question" not in entry:
    raise ValueError(f"{where}: needs 'question'")
  raw = entry.get("answers")
  if raw is None and allow_no_answers:
    answers: tuple[str, ...] = ()
  else:
    answers = _answers(raw, where)
  return VqaRecord(
    str(entry.get(qid_key, where)),
    image_path,
    _text(entry["question"], where, "question"),
    answers,
    most_common(answers) if answers else "",
  )


def load_textvqa(
  annotation_file: str | os.PathLike, image_dir: str | os.PathLike, image_template: str = "{}.jpg"
) -> list[VqaRecord]:
  """TextVQA (``TextVQA_0.5.1_<split>.json``): ``{"data": [{"question_id", "image_id",
  "question", "answers": [10]}]}``; the image is ``<image_dir>/<image_template with image_id>``
  (``train_images/<id>.jpg`` for train and val in the release)."""
  path = os.fspath(annotation_file)
  out = []
  for i, e in enumerate(_data_list(path, "TextVQA")):
    where = f"{path}: data[{i}]"
    if not isinstance(e, Mapping) or "image_id" not in e:
      raise ValueError(f"{where}: needs 'image_id'")
    image = os.path.join(os.fspath(image_dir), image_template.format(e["image_id"]))
    out.append(_record(e, where, "question_id", image, allow_no_answers=True))
  return out


def load_stvqa(annotation_file: str | os.PathLike, image_dir: str | os.PathLike) -> list[VqaRecord]:
  """ST-VQA (``train_task_1.json`` and the like): ``{"data": [{"question_id", "file_path",
  "question", "answers": [...]}]}``, images at ``<image_dir>/<file_path>``."""
  path = os.fspath(annotation_file)
  out = []
  for i, e in enumerate(_data_list(path, "ST-VQA")):
    where = f"{path}: data[{i}]"
    name = e.get("file_path", e.get("file_name")) if isinstance(e, Mapping) else None
    if not name:
      raise ValueError(f"{where}: needs 'file_path' (or 'file_name')")
    image = os.path.join(os.fspath(image_dir), name)
    out.append(_record(e, where, "question_id", image, allow_no_answers=True))
  return out


def load_docvqa(
  annotation_file: str | os.PathLike, image_dir: str | os.PathLike
) -> list[VqaRecord]:
  """DocVQA (``train_v1.0.json``, ``val_v1.0.json``): ``{"data": [{"questionId", "image",
  "question", "answers": [...]}]}``, images at ``<image_dir>/<image>`` (e.g. ``documents/x.png``)."""
  path = os.fspath(annotation_file)
  out = []
  for i, e in enumerate(_data_list(path, "DocVQA")):
    where = f"{path}: data[{i}]"
    if not isinstance(e, Mapping) or not e.get("image"):
      raise ValueError(f"{where}: needs 'image'")
    image = os.path.join(os.fspath(image_dir), e["image"])
    out.append(_record(e, where, "questionId", image, allow_no_answers=True))
  return out


# Reader and metric of each "data list" dataset (the paper's Table 4 scores TextVQA with VQA
# accuracy, ST-VQA and DocVQA with ANLS).
DATA_LIST_READERS = {"textvqa": load_textvqa, "stvqa": load_stvqa, "docvqa": load_docvqa}
ANLS_DATASETS = ("stvqa", "docvqa")
