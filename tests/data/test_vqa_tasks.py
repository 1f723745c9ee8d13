"""VQA tasks: the package's tiny questions (split by picture, the majority answer as target), the
VQA v2, TextVQA, ST-VQA and DocVQA layouts, the prompt before each question, every human answer
kept for the metric (VQA accuracy, or ANLS for ST-VQA and DocVQA), and malformed files refused by
file and entry."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from adalink.data.fixtures import tiny_vqa
from adalink.data.metrics import vqa as vqa_metrics
from adalink.data.tasks import vqa, vqa_annotations

FIXTURE = os.path.join(tiny_vqa.DEFAULT_DIR, "questions.json")


def test_tiny_questions_split_by_picture_with_the_majority_answer_as_target():
  splits = vqa_annotations.load_vqa_json(FIXTURE, validation_fraction=0.25)
  assert len(splits["all"]) == 36
  assert len(splits["train"]) + len(splits["validation"]) == 36 and splits["validation"]
  assert {r.image_path for r in splits["train"]}.isdisjoint(
    {r.image_path for r in splits["validation"]}
  )
  first = splits["all"][0]
  assert first.question == "what shape is shown?" and first.target == "square"
  assert len(first.answers) == 10 and os.path.isfile(first.image_path)


def test_the_task_reads_prompt_and_question_and_scores_every_answer():
  task = vqa.get_vqa_json_task(FIXTURE, image_size=32)
  ds = task.get_dataset(None, split="validation", shuffle=False, try_in_mem_cache=False)
  examples = list(ds.as_numpy_iterator())
  assert examples and examples[0]["image"].shape == (32, 32, 3)
  ex = examples[0]
  assert ex["inputs_pretokenized"].decode().startswith("answer en what ")
  answers = vqa.vqa_postprocess_fn(ex["targets_pretokenized"], ex, is_target=True)
  assert len(answers) == 10 and answers.count(ex["targets_pretokenized"].decode()) == 6
  metric = task.metric_fns[0]
  assert metric([answers], [ex["targets_pretokenized"].decode()]) == {"vqa_accuracy": 100.0}
  # "the <answer>" normalises to the answer; the one wrong human answer alone scores 0.3.
  assert metric([answers], ["the " + ex["targets_pretokenized"].decode()]) == {
    "vqa_accuracy": 100.0
  }
  assert abs(metric([answers], [answers[-1]])["vqa_accuracy"] - 30.0) < 1e-9
  assert vqa_metrics.vqa_accuracy_metric is metric


def test_the_vqav2_layout(tmp_path):
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "COCO_val2014_000000000042.jpg")
  questions = {"questions": [{"question_id": 7, "image_id": 42, "question": "how many?"}]}
  answers = [{"answer": "2"}] * 7 + [{"answer": "two"}, {"answer": "3"}, {"answer": "4"}]
  annotations = {"annotations": [{"question_id": 7, "answers": answers}]}
  (tmp_path / "q.json").write_text(json.dumps(questions))
  (tmp_path / "a.json").write_text(json.dumps(annotations))
  (record,) = vqa_annotations.load_vqav2(tmp_path / "q.json", tmp_path / "a.json", tmp_path)
  assert record.image_path == str(tmp_path / "COCO_val2014_000000000042.jpg")
  assert record.target == "2" and len(record.answers) == 10
  # "two" normalises to "2": eight humans agree, so "2" scores 1.
  assert vqa_metrics.vqa_accuracy("2", record.answers) == 1.0
  questions["questions"].append({"question_id": 8, "image_id": 42, "question": "what?"})
  (tmp_path / "q.json").write_text(json.dumps(questions))
  with pytest.raises(ValueError, match=r"q.json: questions\[1\]: question_id 8 has no entry"):
    vqa_annotations.load_vqav2(tmp_path / "q.json", tmp_path / "a.json", tmp_path)


def test_malformed_generic_entries_are_named(tmp_path):
  path = tmp_path / "bad.json"
  path.write_text(json.dumps({"questions": [{"file_name": "x.png", "question": "why?"}]}))
  with pytest.raises(ValueError, match=r"bad.json: questions\[0\]: missing 'answers'"):
    vqa_annotations.load_vqa_json(path)
  path.write_text(json.dumps([{"file_name": "x.png", "question": "why?", "answers": ["", "a"]}]))
  with pytest.raises(ValueError, match=r"questions\[0\]: answers\[0\]: an answer must be"):
    vqa_annotations.load_vqa_json(path)


IMAGES = os.path.join(os.path.dirname(tiny_vqa.DEFAULT_DIR), "captions_tiny", "images")


@pytest.mark.parametrize(
  "dataset,metric", [("textvqa", "vqa_accuracy"), ("stvqa", "anls"), ("docvqa", "anls")]
)
def test_textvqa_stvqa_and_docvqa_layouts_score_with_their_own_metric(dataset, metric):
  extra = ("{}.png",) if dataset == "textvqa" else ()
  splits = {
    s: (os.path.join(tiny_vqa.DEFAULT_DIR, f"{dataset}_{f}.json"), IMAGES, *extra)
    for s, f in (("train", "train"), ("validation", "val"))
  }
  task = vqa.get_data_list_task(dataset, splits, image_size=16)
  ds = task.get_dataset(None, split="validation", shuffle=False, try_in_mem_cache=False)
  examples = list(ds.as_numpy_iterator())
  assert len(examples) == 9 and examples[0]["image"].shape == (16, 16, 3)
  answers = [vqa.vqa_postprocess_fn(None, ex, is_target=True) for ex in examples]
  targets = [ex["targets_pretokenized"].decode() for ex in examples]
  score = task.metric_fns[0]
  assert score(answers, targets) == {metric: 100.0}
  if metric == "anls":
    # One edit in six characters: normalised Levenshtein 1/6, ANLS 5/6 for that question.
    assert targets[0] == "square"
    near = ["squar"] + targets[1:]
    assert abs(score(answers, near)["anls"] - 100.0 * (8 + 5 / 6) / 9) < 1e-9


def test_a_docvqa_entry_without_its_image_is_named(tmp_path):
  path = tmp_path / "val.json"
  path.write_text(json.dumps({"data": [{"questionId": 1, "question": "what?", "answers": ["x"]}]}))
  with pytest.raises(ValueError, match=r"val.json: data\[0\]: needs 'image'"):
    vqa_annotations.load_docvqa(path, tmp_path)
