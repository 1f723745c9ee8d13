"""VQA soft accuracy (with the VQA answer normalisation) and ANLS."""

import pytest

from adalink.data.metrics import vqa


@pytest.mark.parametrize(
  "matches,expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)]
)
def test_soft_accuracy_counts_matching_humans(matches, expected):
  answers = ["yes"] * matches + ["no"] * (10 - matches)
  assert vqa.vqa_accuracy("yes", answers) == pytest.approx(expected)


@pytest.mark.parametrize(
  "raw,normalized",
  [
    ("Two", "2"),
    ("the dog", "dog"),
    ("A red car.", "red car"),
    ("dont", "don't"),
    ("yes!", "yes"),
    ("3.5", "3.5"),
    ("1,000", "1000"),
    ("left-hand side", "left hand side"),
    ("ten", "10"),
    ("  none\n", "0"),
    ("t-shirt / shorts", "t shirt shorts"),
    ("x/y", "x y"),
    ("its", "its"),
  ],
)
def test_answer_normalization(raw, normalized):
  assert vqa.normalize_answer(raw) == normalized


def test_normalisation_applies_to_prediction_and_answers():
  assert vqa.vqa_accuracy("Two.", ["2"] * 3 + ["3"] * 7) == pytest.approx(0.9)
  assert vqa.vqa_accuracy("the dog", ["Dog"] * 10) == 1.0


def test_vqa_metric_is_the_mean_in_percent():
  out = vqa.vqa_accuracy_metric([["yes"] * 10, ["no"] * 10], ["yes", "yes"])
  assert out == {"vqa_accuracy": pytest.approx(50.0)}


def test_levenshtein():
  assert vqa.levenshtein("kitten", "sitting") == 3
  assert vqa.levenshtein("", "abc") == 3
  assert vqa.levenshtein("same", "same") == 0


def test_anls():
  assert vqa.anls("Hello World", ["hello  world"]) == 1.0
  assert vqa.anls("hello wrld", ["hello world"]) == pytest.approx(1 - 1 / 11)
  assert vqa.anls("abc", ["xyz"]) == 0.0  # NL = 1 >= 0.5
  assert vqa.anls("abcd", ["abxy"]) == 0.0  # NL = 0.5 is not below the threshold
  assert vqa.anls("abcd", ["zzzz", "abcx"]) == pytest.approx(0.75)  # best reference counts
  assert vqa.anls_metric([["abc"], ["abc"]], ["abc", "xyz"]) == {"anls": pytest.approx(50.0)}


def test_bad_inputs():
  with pytest.raises(ValueError):
    vqa.vqa_accuracy("yes", [])
  with pytest.raises(ValueError):
    vqa.anls_metric([["a"]], ["a", "b"])
