"""GLUE seqio tasks: real files in shared/ (counts, formatting), the tiny fixture (every task and
layout), the TFDS source (mocked), the mixture, registry reuse, and clear errors."""

import os
import re

import numpy as np
import pytest
import seqio
import tensorflow_datasets as tfds

import adalink
from adalink.data.tasks import glue, glue_spec
from adalink.data.pipeline import vocab

# Published GLUE sizes of the files in shared/ (see shared/README.md); QNLI has only dev there.
SHARED_COUNTS = {
  ("cola", "train"): 8551,
  ("cola", "validation"): 1043,
  ("sst2", "train"): 67349,
  ("sst2", "validation"): 872,
  ("mrpc", "train"): 3668,
  ("mrpc", "validation"): 408,
  ("rte", "train"): 2490,
  ("rte", "validation"): 277,
  ("stsb", "train"): 5749,
  ("stsb", "validation"): 1500,
  ("qnli", "validation"): 5463,
}
LABEL_WORDS = {
  "cola": {"acceptable", "unacceptable"},
  "sst2": {"positive", "negative"},
  "mrpc": {"equivalent", "not_equivalent"},
  "qqp": {"duplicate", "not_duplicate"},
  "mnli": {"entailment", "neutral", "contradiction"},
  "qnli": {"entailment", "not_entailment"},
  "rte": {"entailment", "not_entailment"},
}
INPUT_FORMS = {  # T5's text-to-text inputs: task prefix, then the fields in alphabetical order
  "cola": r"cola sentence: \S.*",
  "sst2": r"sst2 sentence: \S.*",
  "mrpc": r"mrpc sentence1: .+ sentence2: .+",
  "qqp": r"qqp question1: .+ question2: .+",
  "stsb": r"stsb sentence1: .+ sentence2: .+",
  "mnli": r"mnli hypothesis: .+ premise: .+",
  "qnli": r"qnli question: .+ sentence: .+",
  "rte": r"rte sentence1: .+ sentence2: .+",
}


def _file_rows(path, has_header):
  """Data rows counted straight from the file, independently of the reader under test."""
  with open(path, "rb") as f:
    lines = f.read().decode("utf-8-sig").split("\n")
  if lines[-1] == "":
    lines.pop()
  return len(lines) - (1 if has_header else 0)


def _count(task, split):
  """Examples the full task pipeline yields (tokenised), counted in graph mode."""
  ds = task.get_dataset(None, split=split, shuffle=False, try_in_mem_cache=False)
  return int(ds.reduce(np.int64(0), lambda c, _: c + 1).numpy())


def _examples(task, split, n):
  ds = task.get_dataset(None, split=split, shuffle=False, try_in_mem_cache=False)
  return list(ds.take(n).as_numpy_iterator())


def _check_format(name, ex):
  inputs = ex["inputs_pretokenized"].decode()
  target = ex["targets_pretokenized"].decode()
  assert re.fullmatch(INPUT_FORMS[glue_spec.get_spec(name).benchmark], inputs), inputs
  assert "  " not in inputs and inputs == inputs.strip()
  if name == "stsb":
    assert re.fullmatch(r"\d\.\d", target) and round(float(target) * 5) == float(target) * 5
  else:
    assert target in LABEL_WORDS[glue_spec.get_spec(name).benchmark]
    assert target == glue_spec.get_spec(name).label_names[ex["label"]]
  assert ex["task_id"] == glue_spec.GLUE_TASKS.index(glue_spec.get_spec(name).benchmark)
  # The tokens are the byte encoding of the text plus EOS.
  assert list(ex["inputs"]) == [b + 3 for b in inputs.encode()] + [1]


def _source_count(task, split):
  ds = task.source.get_dataset(split, shuffle=False)
  return int(ds.batch(8192).reduce(np.int64(0), lambda c, b: c + _rows(b)).numpy())


def _rows(batch):
  import tensorflow as tf

  return tf.shape(batch["idx"], out_type=tf.int64)[0]


def test_shared_glue_tasks_build_and_counts_match_the_files(glue_dir):
  counts = {}
  for (name, split), published in SHARED_COUNTS.items():
    spec = glue_spec.get_spec(name)
    task = glue.get_glue_task(name, data_dir=glue_dir)
    path = glue_dir / spec.tsv_dir / spec.tsv_split_files[split]
    assert _file_rows(path, spec.tsv_has_header) == published
    assert task.num_input_examples(split) == published
    assert _source_count(task, split) == published
    if split == "validation":
      # The whole tokenising pipeline, one output per row (train splits share the same
      # one-to-one preprocessors; counting 90k rows through it would only cost time).
      assert _count(task, split) == published, (name, split)
    counts[f"{name}/{split}"] = published
  print("\nexamples per split, equal to the data rows of each file:", counts)
  # Tasks whose files shared/ lacks are a clear error, not an empty task.
  for name, folder in (("qqp", "QQP"), ("mnli", "MNLI")):
    with pytest.raises(FileNotFoundError, match=folder):
      glue.get_glue_task(name, data_dir=glue_dir)


def test_five_formatted_examples_per_shared_task(glue_dir):
  for name in ("cola", "sst2", "mrpc", "stsb", "qnli", "rte"):
    task = glue.get_glue_task(name, data_dir=glue_dir)
    print(f"\n== {name} (validation)")
    for ex in _examples(task, "validation", 5):
      _check_format(name, ex)
      print(
        f"  {ex['inputs_pretokenized'].decode()[:150]!r} -> {ex['targets_pretokenized'].decode()!r}"
      )


def test_known_rows_of_the_real_files(glue_dir):
  first = {
    n: _examples(glue.get_glue_task(n, data_dir=glue_dir), "validation", 2)
    for n in ("cola", "stsb", "rte", "mrpc")
  }
  assert first["cola"][0]["inputs_pretokenized"] == (
    b"cola sentence: The sailors rode the breeze clear of the rocks."
  )
  assert first["cola"][0]["targets_pretokenized"] == b"acceptable"
  assert [e["targets_pretokenized"] for e in first["stsb"]] == [b"5.0", b"4.8"]  # 5.000, 4.750
  assert first["stsb"][1]["label"] == pytest.approx(4.75)
  assert first["rte"][0]["targets_pretokenized"] == b"not_entailment"
  assert first["rte"][0]["inputs_pretokenized"].endswith(
    b"sentence2: Christopher Reeve had an accident."
  )
  # The TF preprocessor writes the same STS-B targets as the pure-Python spec, row by row.
  stsb = glue.get_glue_task("stsb", data_dir=glue_dir)
  spec = glue_spec.get_spec("stsb")
  for ex in _examples(stsb, "validation", 1500):
    assert ex["targets_pretokenized"].decode() == spec.target_text(ex["label"])
  # MRPC's unbalanced quote survives (GLUE files are not CSV-quoted).
  assert b'sentence2: "The foodservice pie business' in first["mrpc"][0]["inputs_pretokenized"]


def test_every_task_and_layout_from_the_tiny_fixture(tiny_glue_dir):
  expected = {
    "cola": {"train": 32, "validation": 12, "test": 6},
    "sst2": {"train": 96, "validation": 24, "test": 8},
    "mrpc": {"train": 32, "validation": 12},
    "qqp": {"train": 32, "validation": 12},
    "stsb": {"train": 32, "validation": 12},
    "mnli": {"train": 36, "validation_matched": 12, "validation_mismatched": 12},
    "mnli_matched": {"validation": 12},
    "mnli_mismatched": {"validation": 12},
    "qnli": {"train": 32, "validation": 12},
    "rte": {"train": 32, "validation": 12},
  }
  assert set(expected) == set(glue_spec.GLUE_TASK_NAMES)
  for name, splits in expected.items():
    task = glue.get_glue_task(name, data_dir=tiny_glue_dir)
    assert set(task.splits) == set(splits), name
    for split, n in splits.items():
      exs = _examples(task, split, 1000)
      assert len(exs) == n, (name, split)
      for ex in exs[:5]:
        if split == "test":
          assert ex["label"] == -1 and ex["targets_pretokenized"] == b"<unk>"
        else:
          _check_format(name, ex)
  # The two MNLI views read the dev_matched / dev_mismatched files.
  matched = _examples(glue.get_glue_task("mnli_matched", data_dir=tiny_glue_dir), "validation", 12)
  full = _examples(glue.get_glue_task("mnli", data_dir=tiny_glue_dir), "validation_matched", 12)
  assert [e["inputs_pretokenized"] for e in matched] == [e["inputs_pretokenized"] for e in full]


def test_tfds_source_yields_the_same_form():
  # TFDS is mocked (random text from the glue/* feature specs): checks the wiring, offline.
  for name in ("rte", "stsb", "mnli_mismatched"):
    task = glue.get_glue_task(name, source="tfds")
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
      exs = _examples(task, "validation", 3)
    assert len(exs) == 3
    for ex in exs:
      _check_format(name, ex)


def test_same_arguments_give_the_same_registered_task(tiny_glue_dir, tmp_path):
  a = glue.get_glue_task("rte", data_dir=tiny_glue_dir)
  b = glue.get_glue_task("rte", data_dir=str(tiny_glue_dir))
  assert a is b and seqio.get_mixture_or_task(a.name) is a
  c = glue.get_glue_task(
    "rte", data_dir=tiny_glue_dir, vocabulary=vocab.get_vocabulary("byte", extra_ids=3)
  )
  d = glue.get_glue_task("rte", data_dir=tiny_glue_dir, on_bad_row="skip")
  assert len({a.name, c.name, d.name}) == 3


def test_postprocess_and_metrics_are_exposed_on_the_task(tiny_glue_dir):
  task = glue.get_glue_task("mrpc", data_dir=tiny_glue_dir)
  assert task.postprocess_fn("equivalent") == 1
  assert task.postprocess_fn(b" not_equivalent ") == 0
  assert task.postprocess_fn("maybe") == -1
  assert task.postprocess_fn("whatever", example={"label": np.int64(1)}, is_target=True) == 1
  metrics = {}
  for fn in task.metric_fns:
    metrics.update(fn([1, 0, 1, 1], [1, 0, 0, -1]))
  assert metrics == {"accuracy": 50.0, "f1": pytest.approx(100 * 2 / 4)}
  assert glue.get_spec(task) is glue_spec.get_spec("mrpc")


# The shipped base's 8k vocabulary, which has no piece for "_".
ZOO_VOCAB = os.path.join(os.path.dirname(adalink.__file__), "zoo", "t5_nano_en", "spiece.model")


@pytest.mark.parametrize("name", ["mrpc", "rte"])
def test_a_label_the_vocabulary_cannot_spell_is_still_that_label(tiny_glue_dir, name):
  vocabulary = seqio.SentencePieceVocabulary(ZOO_VOCAB, extra_ids=100)
  task = glue.get_glue_task(name, data_dir=tiny_glue_dir, vocabulary=vocabulary)
  labels = glue_spec.get_spec(name).label_names
  for label, text in enumerate(labels):
    # What the model writes when it emits exactly the target's ids: a "_" comes back as unk.
    written = vocabulary.decode(vocabulary.encode(text))
    assert (written != text) == ("_" in text)
    assert task.postprocess_fn(written) == label
    assert task.postprocess_fn(text) == label
  assert task.postprocess_fn("not") == -1


def test_a_vocabulary_that_spells_two_labels_alike_is_refused():
  spec = glue_spec.get_spec("mrpc")
  with pytest.raises(ValueError, match="spells labels 'not_equivalent' and 'equivalent' alike"):
    spec.postprocess_fn_for(lambda text: "same")


def test_glue_mixture_is_examples_proportional_with_a_cap(tiny_glue_dir):
  mix = glue.get_glue_mixture(data_dir=tiny_glue_dir)  # all 8 tasks
  sizes = {
    "cola": 32,
    "sst2": 96,
    "mrpc": 32,
    "qqp": 32,
    "stsb": 32,
    "mnli": 36,
    "qnli": 32,
    "rte": 32,
  }
  rates = {glue.get_spec(t).name: mix.get_rate(t) for t in mix.tasks}
  assert rates == {k: float(v) for k, v in sizes.items()}
  capped = glue.get_glue_mixture(data_dir=tiny_glue_dir, cap=33)
  assert {glue.get_spec(t).name: capped.get_rate(t) for t in capped.tasks} == {
    k: float(min(v, 33)) for k, v in sizes.items()
  }
  assert capped.name != mix.name
  assert glue.get_glue_mixture(data_dir=tiny_glue_dir) is mix
  # Every example carries its task's id (index in GLUE_TASKS).
  small = glue.get_glue_mixture(tasks=("cola", "stsb", "rte"), data_dir=tiny_glue_dir)
  ds = small.get_dataset(
    None,
    "train",
    shuffle=True,
    seed=0,
    passthrough_features=["task_id"],
    try_in_mem_cache=False,
    log_mixing_proportions=False,
  )
  ids = [int(ex["task_id"]) for ex in ds.take(60).as_numpy_iterator()]
  assert (
    set(ids)
    == {glue_spec.task_id("cola"), glue_spec.task_id("stsb"), glue_spec.task_id("rte")}
    == {0, 4, 7}
  )


def test_mixture_errors(glue_dir, tiny_glue_dir):
  with pytest.raises(ValueError, match="no 'train' split"):
    glue.get_glue_mixture(tasks=("rte", "qnli"), data_dir=glue_dir)
  with pytest.raises(ValueError, match="cap"):
    glue.get_glue_mixture(tasks=("rte",), data_dir=tiny_glue_dir, cap=0)
  with pytest.raises(ValueError, match="duplicate"):
    glue.get_glue_mixture(tasks=("rte", "rte"), data_dir=tiny_glue_dir)


def test_bad_arguments_are_clear_errors(tmp_path, tiny_glue_dir):
  with pytest.raises(ValueError, match="unknown GLUE task 'wnli'"):
    glue.get_glue_task("wnli", data_dir=tiny_glue_dir)
  with pytest.raises(ValueError, match="source"):
    glue.get_glue_task("rte", source="csv", data_dir=tiny_glue_dir)
  with pytest.raises(ValueError, match="data_dir"):
    glue.get_glue_task("rte")
  with pytest.raises(FileNotFoundError, match="not_there"):
    glue.get_glue_task("rte", data_dir=tmp_path / "not_there")
  with pytest.raises(FileNotFoundError, match="RTE"):
    glue.get_glue_task("rte", data_dir=tmp_path)
  (tmp_path / "RTE").mkdir()
  with pytest.raises(FileNotFoundError, match="no split files"):
    glue.get_glue_task("rte", data_dir=tmp_path)
  with pytest.raises(ValueError, match="on_bad_row"):
    glue.get_glue_task("rte", data_dir=tiny_glue_dir, on_bad_row="ignore")
