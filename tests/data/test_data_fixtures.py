"""The project's own fixtures: regenerated exactly by their scripts, synthetic (no GLUE rows), and
SST-2-tiny learnable."""

import collections
import filecmp
import json
import math
import re

import numpy as np
from PIL import Image

from adalink.data.tasks import glue_source, glue_spec
from adalink.data.fixtures import tiny_captions, tiny_glue


def test_glue_tiny_files_equal_the_generator_output(tmp_path, tiny_glue_dir):
  tiny_glue.write_glue_tiny(str(tmp_path))
  shipped = sorted(p.relative_to(tiny_glue_dir) for p in tiny_glue_dir.rglob("*.tsv"))
  fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.tsv"))
  assert shipped == fresh and len(shipped) == 19
  for rel in shipped:
    assert filecmp.cmp(tiny_glue_dir / rel, tmp_path / rel, shallow=False), rel


def test_captions_tiny_equal_the_generator_output(tmp_path, tiny_captions_dir):
  tiny_captions.write_captions_tiny(str(tmp_path))
  assert json.loads((tmp_path / "captions.json").read_text()) == json.loads(
    (tiny_captions_dir / "captions.json").read_text()
  )
  for entry in json.loads((tmp_path / "captions.json").read_text())["images"]:
    a = np.asarray(Image.open(tmp_path / entry["file_name"]))
    b = np.asarray(Image.open(tiny_captions_dir / entry["file_name"]))
    np.testing.assert_array_equal(a, b)


def _sentences(data_dir, name, split):
  cols = glue_source.load_split(glue_spec.get_spec(name), data_dir, split)
  return [t for texts in cols.text.values() for t in texts], cols.label


def test_fixture_text_is_not_taken_from_glue(glue_dir, tiny_glue_dir):
  ours = set()
  for name in ("cola", "sst2", "mrpc", "stsb", "rte"):
    for split in ("train", "validation"):
      ours.update(s.strip() for s in _sentences(tiny_glue_dir, name, split)[0])
  real = set()
  for name, splits in (
    ("cola", ("train", "validation")),
    ("sst2", ("train", "validation")),
    ("mrpc", ("train", "validation")),
    ("stsb", ("train", "validation")),
    ("rte", ("train", "validation")),
    ("qnli", ("validation",)),
  ):
    for split in splits:
      real.update(s.strip() for s in _sentences(glue_dir, name, split)[0])
  assert len(ours) > 100 and not ours & real


def _words(sentence):
  return re.findall(r"[a-z]+", sentence.lower())


def test_sst2_tiny_is_learnable_by_a_bag_of_words(tiny_glue_dir):
  # Naive Bayes with add-one smoothing, trained on train, must classify all of dev.
  texts, labels = _sentences(tiny_glue_dir, "sst2", "train")
  counts = {0: collections.Counter(), 1: collections.Counter()}
  for t, y in zip(texts, labels):
    counts[y].update(_words(t))
  vocab = set(counts[0]) | set(counts[1])

  def score(t, y):
    total = sum(counts[y].values()) + len(vocab)
    return sum(math.log((counts[y][w] + 1) / total) for w in _words(t) if w in vocab)

  dev_texts, dev_labels = _sentences(tiny_glue_dir, "sst2", "validation")
  predictions = [int(score(t, 1) > score(t, 0)) for t in dev_texts]
  assert predictions == list(dev_labels)
  assert collections.Counter(labels) == {0: 48, 1: 48}
