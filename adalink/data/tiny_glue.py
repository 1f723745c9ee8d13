"""Writes ``testdata/glue_tiny``: a small synthetic GLUE-layout fixture, so smoke runs need no download.

Every sentence is generated here from short word lists; none is taken from GLUE. The files follow the
real layouts (CoLA without a header, MRPC with a UTF-8 BOM, STS-B's 10 columns, MNLI's 12-column
train and 16-column dev files with matched/mismatched splits, QQP's 6 columns), so the TSV code paths
are exercised for every task, including MNLI and QQP which ``shared/`` lacks.

SST-2-tiny is learnable on purpose: each sentence carries one adjective from a clearly positive or a
clearly negative list, and its label is that adjective's polarity.

Regenerate (deterministic) with ``python -m adalink.data.tiny_glue [out_dir]``; a test checks that the
shipped files equal this script's output.
"""

from __future__ import annotations

import os
import random
import sys

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "glue_tiny")

POSITIVE = [
  "wonderful",
  "delightful",
  "brilliant",
  "charming",
  "superb",
  "joyful",
  "excellent",
  "lovely",
  "moving",
  "fantastic",
  "heartwarming",
  "gorgeous",
]
NEGATIVE = [
  "awful",
  "boring",
  "dreadful",
  "tedious",
  "terrible",
  "clumsy",
  "dull",
  "painful",
  "horrible",
  "lifeless",
  "annoying",
  "miserable",
]
NOUNS = [
  "film",
  "movie",
  "story",
  "script",
  "cast",
  "ending",
  "soundtrack",
  "plot",
  "performance",
  "director",
  "sequel",
  "comedy",
]
ANIMALS = ["cat", "dog", "bird", "horse", "fox", "rabbit", "goat", "mouse"]
VERBS_I = ["sleeps", "runs", "sings", "waits", "jumps", "swims"]
PLACES = ["garden", "kitchen", "station", "library", "harbor", "market"]
PEOPLE = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana"]
OBJECTS = ["book", "lamp", "bicycle", "guitar", "kettle", "camera"]


_SST2_TEMPLATES = [
  "the {n} is {a} .",
  "a {a} {n} .",
  "what a {a} {n} !",
  "i found the {n} {a} .",
  "the {n} felt {a} from start to finish .",
]


def _sst2_pair(rng: random.Random, i: int) -> tuple[str, str]:
  # The i-th positive and i-th negative adjective in the same frame: every other word is then
  # equally frequent in both classes, and only the adjective carries the label.
  template, noun = rng.choice(_SST2_TEMPLATES), rng.choice(NOUNS)
  return (template.format(n=noun, a=POSITIVE[i]), template.format(n=noun, a=NEGATIVE[i]))


def _sst2_sentence(rng: random.Random) -> str:
  """An unlabeled sentence (for the test split) of either polarity."""
  return _sst2_pair(rng, rng.randrange(len(POSITIVE)))[rng.randrange(2)]


def _write(path: str, lines: list[str], bom: bool = False) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  text = "".join(line + "\n" for line in lines)
  with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
    f.write(text)


def _balanced_labels(rng: random.Random, n: int, k: int = 2) -> list[int]:
  labels = [i % k for i in range(n)]
  rng.shuffle(labels)
  return labels


def write_sst2(out: str, rng: random.Random) -> None:
  # Every adjective appears 4 times in train and once in dev.
  for split, repeats in (("train", 4), ("dev", 1)):
    rows = []
    for _ in range(repeats):
      for i in range(len(POSITIVE)):
        positive, negative = _sst2_pair(rng, i)
        rows += [(positive, 1), (negative, 0)]
    rng.shuffle(rows)
    # SST-2 rows end in a space before the tab, as in the real files.
    lines = ["sentence\tlabel"] + [f"{text} \t{label}" for text, label in rows]
    _write(os.path.join(out, "SST-2", f"{split}.tsv"), lines)
  lines = ["index\tsentence"] + [f"{i}\t{_sst2_sentence(rng)}" for i in range(8)]
  _write(os.path.join(out, "SST-2", "test.tsv"), lines)


def _cola_sentence(rng: random.Random, acceptable: bool) -> str:
  words = ["the", rng.choice(ANIMALS), rng.choice(VERBS_I), "in", "the", rng.choice(PLACES)]
  if not acceptable:
    # Break the word order (determiner after its noun, verb first) so it is clearly ungrammatical.
    words = [words[2], words[1], words[0], words[3], words[5], words[4]]
  return " ".join(words).capitalize() + "."


def write_cola(out: str, rng: random.Random) -> None:
  for split, n in (("train", 32), ("dev", 12)):
    lines = []  # original CoLA layout: no header; source, label, author's mark, sentence
    for label in _balanced_labels(rng, n):
      mark = "" if label else "*"
      lines.append(f"tiny01\t{label}\t{mark}\t{_cola_sentence(rng, bool(label))}")
    _write(os.path.join(out, "CoLA", f"{split}.tsv"), lines)
  lines = ["index\tsentence"] + [
    f"{i}\t{_cola_sentence(rng, rng.random() < 0.5)}" for i in range(6)
  ]
  _write(os.path.join(out, "CoLA", "test.tsv"), lines)


def _pair(rng: random.Random, same: bool) -> tuple[str, str]:
  person, obj, place = rng.choice(PEOPLE), rng.choice(OBJECTS), rng.choice(PLACES)
  first = f"{person} left the {obj} in the {place}."
  if same:
    second = rng.choice(
      [
        f"The {obj} was left in the {place} by {person}.",
        f"{person} forgot the {obj} at the {place}.",
      ]
    )
  else:
    other = rng.choice([p for p in PLACES if p != place])
    second = rng.choice(
      [
        f"{person} bought a new {obj} near the {other}.",
        f"Nobody has seen the {obj} since it reached the {other}.",
      ]
    )
  return first, second


def write_mrpc(out: str, rng: random.Random) -> None:
  for split, n in (("train", 32), ("dev", 12)):
    lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    for i, label in enumerate(_balanced_labels(rng, n)):
      a, b = _pair(rng, bool(label))
      lines.append(f"{label}\t{1000 + 2 * i}\t{1001 + 2 * i}\t{a}\t{b}")
    _write(os.path.join(out, "MRPC", f"{split}.tsv"), lines, bom=True)  # MRPC ships a BOM


def write_qqp(out: str, rng: random.Random) -> None:
  for split, n in (("train", 32), ("dev", 12)):
    lines = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"]
    for i, label in enumerate(_balanced_labels(rng, n)):
      obj, place = rng.choice(OBJECTS), rng.choice(PLACES)
      q1 = f"How do I fix a {obj} at the {place}?"
      if label:
        q2 = f"What is the way to repair a {obj} at the {place}?"
      else:
        q2 = f"Where can I buy a {rng.choice([o for o in OBJECTS if o != obj])}?"
      lines.append(f"{i}\t{2 * i + 1}\t{2 * i + 2}\t{q1}\t{q2}\t{label}")
    _write(os.path.join(out, "QQP", f"{split}.tsv"), lines)


def write_stsb(out: str, rng: random.Random) -> None:
  header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
  for split, n in (("train", 32), ("dev", 12)):
    lines = [header]
    for i in range(n):
      animal, place = rng.choice(ANIMALS), rng.choice(PLACES)
      s1 = f"A {animal} {rng.choice(VERBS_I)} in the {place}."
      shared = rng.randint(0, 3)
      # More shared content words -> higher similarity; the score follows from that.
      s2_animal = animal if shared >= 1 else rng.choice(ANIMALS)
      s2_place = place if shared >= 2 else rng.choice(PLACES)
      s2 = f"A {s2_animal} {rng.choice(VERBS_I)} in the {s2_place}."
      score = min(5.0, 1.25 * shared + rng.choice([0.0, 0.25, 0.5]))
      lines.append(f"{i}\tmain-tiny\ttiny\t2024\t{i:04d}\tnone\tnone\t{s1}\t{s2}\t{score:.3f}")
    _write(os.path.join(out, "STS-B", f"{split}.tsv"), lines)


_MNLI_LABELS = ["entailment", "neutral", "contradiction"]


def _nli_pair(rng: random.Random, label: str) -> tuple[str, str]:
  person, obj, place = rng.choice(PEOPLE), rng.choice(OBJECTS), rng.choice(PLACES)
  premise = f"{person} is carrying a {obj} through the {place}."
  if label == "entailment":
    hypothesis = f"{person} has a {obj}."
  elif label == "neutral":
    hypothesis = f"{person} bought the {obj} yesterday."
  else:
    hypothesis = f"{person} has never touched a {obj}."
  return premise, hypothesis


def write_mnli(out: str, rng: random.Random) -> None:
  base = [
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
  ]
  files = (
    ("train.tsv", 36, base + ["label1", "gold_label"], "tiny_fiction"),
    (
      "dev_matched.tsv",
      12,
      base + [f"label{k}" for k in range(1, 6)] + ["gold_label"],
      "tiny_fiction",
    ),
    (
      "dev_mismatched.tsv",
      12,
      base + [f"label{k}" for k in range(1, 6)] + ["gold_label"],
      "tiny_letters",
    ),
  )
  for name, n, header, genre in files:
    lines = ["\t".join(header)]
    for i, k in enumerate(_balanced_labels(rng, n, 3)):
      label = _MNLI_LABELS[k]
      p, h = _nli_pair(rng, label)
      parses = [f"( {p} )", f"( {h} )", f"(ROOT {p})", f"(ROOT {h})"]
      votes = [label] * (len(header) - len(base) - 1)
      row = [str(i), str(100 + i), f"{100 + i}{label[0]}", genre] + parses + [p, h] + votes
      lines.append("\t".join(row + [label]))
    _write(os.path.join(out, "MNLI", name), lines)


def write_qnli(out: str, rng: random.Random) -> None:
  for split, n in (("train", 32), ("dev", 12)):
    lines = ["index\tquestion\tsentence\tlabel"]
    for i, label in enumerate(_balanced_labels(rng, n)):
      person, obj, place = rng.choice(PEOPLE), rng.choice(OBJECTS), rng.choice(PLACES)
      question = f"Where did {person} put the {obj}?"
      if label == 0:
        sentence = f"{person} put the {obj} in the {place}."
      else:
        sentence = f"The {place} opens at nine every morning."
      lines.append(f"{i}\t{question}\t{sentence}\t{['entailment', 'not_entailment'][label]}")
    _write(os.path.join(out, "QNLI", f"{split}.tsv"), lines)


def write_rte(out: str, rng: random.Random) -> None:
  for split, n in (("train", 32), ("dev", 12)):
    lines = ["index\tsentence1\tsentence2\tlabel"]
    for i, label in enumerate(_balanced_labels(rng, n)):
      p, h = _nli_pair(rng, "entailment" if label == 0 else "contradiction")
      lines.append(f"{i}\t{p}\t{h}\t{['entailment', 'not_entailment'][label]}")
    _write(os.path.join(out, "RTE", f"{split}.tsv"), lines)


def write_glue_tiny(out_dir: str = DEFAULT_DIR, seed: int = 0) -> str:
  """Writes every task's files under ``out_dir`` and returns it."""
  rng = random.Random(seed)
  for writer in (
    write_cola,
    write_sst2,
    write_mrpc,
    write_qqp,
    write_stsb,
    write_mnli,
    write_qnli,
    write_rte,
  ):
    writer(out_dir, rng)
  return out_dir


if __name__ == "__main__":
  print(write_glue_tiny(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR))
