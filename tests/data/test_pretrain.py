"""Pretraining data: span corruption and prefix LM checked by hand and end to end, the hash split,
sharding, exact packing, and the real corpus with the real T5 vocabulary."""

import collections

import numpy as np
import pytest
import seqio

from adalink.data.pipeline import features
from adalink.data.tasks import pretrain as P
from adalink.data.tasks import pretrain_objectives as O
from adalink.data.tasks import pretrain_source as S
from adalink.data.pipeline.vocab import get_vocabulary

WORDS = (
  "the of and a to in is was he that it for on with as his by at from they be this "
  "river stone winter letter garden morning"
).split()
BYTE_VOCAB = get_vocabulary("byte", extra_ids=100)  # 259 byte ids + 100 sentinels = 359
TOP = BYTE_VOCAB.vocab_size - 1  # the first sentinel, 358


def _doc(rng, min_words, max_words):
  lines = []
  for _ in range(rng.integers(1, 4)):
    n = int(rng.integers(min_words, max_words))
    lines.append(" ".join(rng.choice(WORDS, n)).capitalize() + ".")
  return "\n".join(lines)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """Three part files of blank-line separated documents; one document appears in two files."""
  root = tmp_path_factory.mktemp("text")
  rng = np.random.default_rng(0)
  files = []
  repeated = "A document that appears twice.\nIts second line."
  for f in range(3):
    docs = [_doc(rng, 5, 40) for _ in range(50)]
    if f in (0, 2):
      docs.insert(10, repeated)
    path = root / f"part-{f:03d}.txt"
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    files.append((path, docs))
  (root / "NOTES.md").write_text("not text data\n")  # ignored: a directory means its *.txt
  return root, files, repeated


def _examples(task, split, lengths, seed=0, shuffle=False):
  ds = task.get_dataset(
    sequence_length=lengths,
    split=split,
    shuffle=shuffle,
    seed=seed,
    num_epochs=1,
    try_in_mem_cache=False,
  )
  return list(ds.as_numpy_iterator())


def _train_stream(files, fraction, vocab):
  """The tokens of every train document in file order, concatenated."""
  out = []
  for _, docs in files:
    for d in docs:
      if not S.is_validation_document(d, fraction):
        out.extend(vocab.encode(d))
  return np.asarray(out)


# ----------------------------------------------------------------------------- pure functions


def test_corrupt_hand_checked_example():
  tokens = np.arange(10, 22)  # 10 11 12 ... 21
  mask = np.zeros(12, bool)
  mask[[2, 3, 7, 10, 11]] = True  # spans: [12 13], [17], [20 21]
  inputs, targets = O.corrupt(tokens, mask, sentinel_start=99)
  assert inputs.tolist() == [10, 11, 99, 14, 15, 16, 98, 18, 19, 97]
  assert targets.tolist() == [99, 12, 13, 98, 17, 97, 20, 21]
  assert O.uncorrupt(inputs, targets, 99).tolist() == tokens.tolist()
  # A mask may also start with noise and end without it.
  inputs, targets = O.corrupt([5, 6, 7, 8], [True, False, True, False], 50)
  assert inputs.tolist() == [50, 6, 49, 8]
  assert targets.tolist() == [50, 5, 49, 7]
  assert O.uncorrupt(inputs, targets, 50).tolist() == [5, 6, 7, 8]


def test_corrupt_and_uncorrupt_refuse_inconsistent_input():
  with pytest.raises(ValueError, match=r"same length.*\(3,\) and \(2,\)"):
    O.corrupt([1, 2, 3], [True, False], 9)
  with pytest.raises(ValueError, match="must start with sentinel 99"):
    O.uncorrupt([1, 99], [5, 99], 99)
  with pytest.raises(ValueError, match="2 sentinel spans but the inputs only 1"):
    O.uncorrupt([1, 99, 2], [99, 5, 98, 6], 99)


def test_noise_fraction_spans_and_sentinels_on_a_long_document():
  rng = np.random.default_rng(7)
  length = 10_000
  tokens = np.arange(1000, 1000 + length)  # all distinct: each token is traceable
  mask = O.noise_span_mask(length, 0.15, 3.0, rng)
  fraction = mask.mean()
  print(f"\nnoise fraction on {length} tokens: {fraction:.4f}")
  assert abs(fraction - 0.15) <= 0.01 * 0.15
  runs = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
  span_lengths = runs[1::2] - runs[::2]
  assert len(span_lengths) == 500  # round(1500 / 3)
  assert span_lengths.mean() == 3.0 and span_lengths.min() >= 1 and len(set(span_lengths)) > 3
  assert not mask[0] and mask[-1]  # T5's layout: non-noise first, noise last

  inputs, targets = O.corrupt(tokens, mask, sentinel_start=999)
  expected = 999 - np.arange(500)  # descending from the top, in span order
  assert inputs[inputs <= 999].tolist() == expected.tolist()
  assert targets[targets <= 999].tolist() == expected.tolist()
  assert targets[0] == 999
  # Every token exactly once across inputs + targets, and back in place after un-corrupting.
  kept = np.concatenate([inputs[inputs > 999], targets[targets > 999]])
  assert np.array_equal(np.sort(kept), tokens)
  assert np.array_equal(O.uncorrupt(inputs, targets, 999), tokens)


def test_span_lengths_are_a_uniform_random_composition():
  rng = np.random.default_rng(3)
  counts = collections.Counter()
  for _ in range(4000):
    counts[tuple(O._random_composition(5, 2, rng))] += 1
  assert set(counts) == {(1, 4), (2, 3), (3, 2), (4, 1)}
  assert all(abs(c / 4000 - 0.25) < 0.04 for c in counts.values()), counts


def test_span_corruption_lengths_fill_exactly():
  assert O.span_corruption_lengths(512, 0.15, 3.0) == (568, 114)  # T5's numbers
  assert O.span_corruption_lengths(64) == (70, 14)
  rng = np.random.default_rng(0)
  for inputs_length in range(3, 700):
    raw, targets_length = O.span_corruption_lengths(inputs_length)
    mask = O.noise_span_mask(raw, 0.15, 3.0, rng)
    inputs, targets = O.corrupt(np.arange(raw) + 1000, mask, 999)
    assert (len(inputs) + 1, len(targets) + 1) == (inputs_length, targets_length)
    bigger = O.noise_span_mask(raw + 1, 0.15, 3.0, rng)
    assert len(O.corrupt(np.arange(raw + 1) + 1000, bigger, 999)[0]) + 1 > inputs_length
  with pytest.raises(ValueError, match="inputs_length=2 is too short"):
    O.span_corruption_lengths(2)
  with pytest.raises(ValueError, match="noise_density must be in"):
    O.span_corruption_lengths(64, noise_density=1.5)


def test_prefix_lm_split_point():
  rng = np.random.default_rng(0)
  points = [O.prefix_lm_split_point(10, 100, rng) for _ in range(500)]
  assert set(points) == set(range(1, 10))  # every split that leaves a token each side
  points = [O.prefix_lm_split_point(10, 3, rng) for _ in range(200)]
  assert set(points) == {7, 8, 9}  # at most 3 tokens left to predict


def test_hash_split_is_a_fixed_function_of_the_text():
  # MD5("hello") = 5d41402abc4b2a76 b9719d911017c592: the score is its first 8 bytes / 2**64.
  assert S.validation_score("hello") == 0x5D41402ABC4B2A76 / 2.0**64
  assert S.validation_score("hello") == S.validation_score(b"hello")
  assert S.is_validation_document("hello", 0.37) and not S.is_validation_document("hello", 0.36)
  assert S.split_documents("a\nb\n\nc\n\n\n\nd\n") == ["a\nb", "c", "d"]


# ----------------------------------------------------------------------------- the source


def test_source_split_is_disjoint_complete_and_position_free(corpus):
  root, files, repeated = corpus
  source = S.TextFilesDataSource(S.resolve_text_files(root), validation_fraction=0.2)
  assert [p.rsplit("/", 1)[1] for p in source.paths] == [
    "part-000.txt",
    "part-001.txt",
    "part-002.txt",
  ]
  read = {}
  for split in S.SPLITS:
    ds = source.get_dataset(split, shuffle=False)
    read[split] = [t.decode("utf-8") for t in ds.map(lambda ex: ex["text"]).as_numpy_iterator()]
    assert source.num_input_examples(split) == len(read[split])
  every = [d for _, docs in files for d in docs]
  assert sorted(read["train"] + read["validation"]) == sorted(every)
  assert not set(read["train"]) & set(read["validation"])
  assert all(S.is_validation_document(d, 0.2) for d in read["validation"])
  assert 0.1 < len(read["validation"]) / len(every) < 0.3
  # The repeated document sits in files 0 and 2; both copies land in the same split.
  home = "validation" if S.is_validation_document(repeated, 0.2) else "train"
  assert read[home].count(repeated) == 2
  # Unshuffled order is file order, and a fresh index gives the same split.
  assert read["train"] == [d for d in every if not S.is_validation_document(d, 0.2)]
  again = S.TextFilesDataSource(source.paths, 0.2).index()
  assert all(np.array_equal(again.offset[s], source.index().offset[s]) for s in S.SPLITS)


def test_source_shards_are_disjoint_and_shuffling_permutes(corpus):
  root, _, _ = corpus
  source = S.TextFilesDataSource(S.resolve_text_files(root), validation_fraction=0.2)
  texts = lambda ds: [t for t in ds.map(lambda ex: ex["text"]).as_numpy_iterator()]
  whole = texts(source.get_dataset("train", shuffle=False))
  shards = [
    texts(source.get_dataset("train", shuffle=True, seed=1, shard_info=seqio.ShardInfo(i, 2)))
    for i in range(2)
  ]
  assert sorted(shards[0] + shards[1]) == sorted(whole)
  assert abs(len(shards[0]) - len(shards[1])) <= 1
  shuffled = texts(source.get_dataset("train", shuffle=True, seed=1))
  assert sorted(shuffled) == sorted(whole) and shuffled != whole
  assert shuffled == texts(source.get_dataset("train", shuffle=True, seed=1))


def test_bad_files_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="no text files match"):
    S.resolve_text_files(tmp_path / "part-*.txt")
  bad = tmp_path / "part-000.txt"
  bad.write_bytes(b"fine text\n\nbroken \xff byte\n")
  source = S.TextFilesDataSource([str(bad)], 0.5)
  with pytest.raises(ValueError, match=r"part-000.txt: not UTF-8 text \(byte offset 18"):
    source.num_input_examples("train")


# ----------------------------------------------------------------------------- the task


def test_span_corruption_task_end_to_end(corpus):
  root, files, _ = corpus
  task = P.get_text_task(root, vocabulary=BYTE_VOCAB, inputs_length=64, validation_fraction=0.2)
  assert tuple(task.splits) == ("train", "validation")
  lengths = P.feature_lengths(task)
  assert lengths == {"inputs": 64, "targets": 14}
  examples = _examples(task, "train", lengths)
  stream = _train_stream(files, 0.2, BYTE_VOCAB)
  assert len(examples) == len(stream) // 70  # full 70-token chunks; the tail is dropped
  restored, noise, raw = [], 0, 0
  for ex in examples:
    inputs, targets = ex["inputs"], ex["targets"]
    assert (len(inputs), len(targets)) == (64, 14)
    assert inputs[-1] == targets[-1] == 1  # EOS
    inputs, targets = inputs[:-1], targets[:-1]
    sentinels = [TOP, TOP - 1, TOP - 2]  # round(round(70 * 0.15) / 3) = 3 spans
    assert inputs[inputs > 258].tolist() == sentinels
    assert targets[targets > 258].tolist() == sentinels and targets[0] == TOP
    chunk = O.uncorrupt(inputs, targets, TOP)
    restored.append(chunk)
    noise += len(targets) - 3
    raw += len(chunk)
  assert np.array_equal(np.concatenate(restored), stream[: len(examples) * 70])
  print(f"\nfixture task: {len(examples)} chunks, noise fraction {noise / raw:.4f}")

  # Masks follow the seed: same seed, same examples; another seed, other masks.
  again = _examples(task, "train", lengths)
  assert all(np.array_equal(a["inputs"], b["inputs"]) for a, b in zip(examples, again))
  other = _examples(task, "train", lengths, seed=1)
  assert any(not np.array_equal(a["inputs"], b["inputs"]) for a, b in zip(examples, other))
  assert len(_examples(task, "validation", lengths)) >= 1


def test_long_documents_noise_fraction_at_t5_lengths(tmp_path):
  rng = np.random.default_rng(5)
  docs = [" ".join(rng.choice(WORDS, 2400)) for _ in range(3)]  # ~12,000 byte tokens each
  (tmp_path / "part-000.txt").write_text("\n\n".join(docs) + "\n")
  task = P.get_text_task(
    tmp_path, vocabulary=BYTE_VOCAB, inputs_length=512, validation_fraction=0.01
  )
  splits = {"validation" if S.is_validation_document(d, 0.01) else "train" for d in docs}
  noise = raw = 0
  for split in splits:
    for ex in _examples(task, split, P.feature_lengths(task), seed=3):
      inputs, targets = ex["inputs"][:-1], ex["targets"][:-1]
      spans = int((targets > 258).sum())
      chunk = O.uncorrupt(inputs, targets, TOP)
      assert len(chunk) == 568
      noise += len(targets) - spans
      raw += len(chunk)
  print(f"\nnoise fraction over {raw} tokens in 568-token chunks: {noise / raw:.4f}")
  assert raw >= 10_000
  assert abs(noise / raw - 0.15) <= 0.01 * 0.15


def test_packed_batches_are_exactly_full(corpus):
  root, _, _ = corpus
  task = P.get_text_task(root, vocabulary=BYTE_VOCAB, inputs_length=64, validation_fraction=0.2)
  batches = list(
    features.make_batches(task, "train", P.feature_lengths(task), 4, pack=True, seed=0)
  )
  assert len(batches) >= 3
  for b in batches:
    assert (b["encoder_input_tokens"] != 0).all() and (b["decoder_target_tokens"] != 0).all()
    assert (b["encoder_segment_ids"] == 1).all() and (b["decoder_segment_ids"] == 1).all()


def test_prefix_lm_task(corpus):
  root, files, _ = corpus
  task = P.get_text_task(
    root,
    objective="prefix_lm",
    vocabulary=BYTE_VOCAB,
    inputs_length=32,
    targets_length=12,
    validation_fraction=0.2,
  )
  assert P.feature_lengths(task) == {"inputs": 32, "targets": 12}
  examples = _examples(task, "train", P.feature_lengths(task))
  pieces, prefixes = [], set()
  for ex in examples:
    assert ex["inputs"][-1] == ex["targets"][-1] == 1
    inputs, targets = ex["inputs"][:-1], ex["targets"][:-1]
    assert 1 <= len(targets) <= 11 and len(inputs) + len(targets) == 32
    pieces += [inputs, targets]
    prefixes.add(len(inputs))
  stream = _train_stream(files, 0.2, BYTE_VOCAB)
  assert np.array_equal(np.concatenate(pieces), stream[: len(examples) * 32])
  assert len(prefixes) > 5  # the split point is random


def test_task_argument_errors(corpus):
  root, _, _ = corpus
  with pytest.raises(ValueError, match="extra_ids=0; build it with extra_ids >= 3"):
    P.get_text_task(root, vocabulary=get_vocabulary("byte"), inputs_length=64)
  with pytest.raises(ValueError, match="unknown pretraining objective 'mlm'"):
    P.get_text_task(root, objective="mlm", vocabulary=BYTE_VOCAB)
  with pytest.raises(ValueError, match="targets_length=10 is too short.*need 14 tokens"):
    P.get_text_task(root, vocabulary=BYTE_VOCAB, inputs_length=64, targets_length=10)
  with pytest.raises(ValueError, match="validation_fraction must be in"):
    P.get_text_task(root, vocabulary=BYTE_VOCAB, validation_fraction=0.0)
  task = P.get_text_task(root, vocabulary=BYTE_VOCAB, inputs_length=64)
  with pytest.raises(ValueError, match=r"sequence_length\['inputs'\]=32 is shorter than the 64"):
    task.get_dataset(sequence_length={"inputs": 32, "targets": 14}, split="train")


# ----------------------------------------------------------------------------- the real corpus


def test_real_corpus_with_the_t5_vocabulary(shared_dir, spiece_model):
  text_dir = shared_dir / "data" / "text"
  if not text_dir.is_dir():
    pytest.skip(f"needs the text corpus at {text_dir}; not present on this machine")
  spm = spiece_model
  vocab = get_vocabulary("sentencepiece", spm, extra_ids=100)
  task = P.get_text_task(text_dir, vocabulary=vocab, inputs_length=64)
  n_train = task.source.num_input_examples("train")
  n_val = task.source.num_input_examples("validation")
  print(f"\nreal corpus: {n_train} train / {n_val} validation documents")
  assert n_train + n_val == 73_277  # the MANIFEST's document count
  assert 0.007 < n_val / (n_train + n_val) < 0.013

  batches = features.make_batches(task, "train", {"inputs": 64, "targets": 16}, 4, pack=True)
  for _ in range(3):
    b = next(batches)
    assert b["encoder_input_tokens"].shape == (4, 64)
    assert (b["encoder_input_tokens"] != 0).all()
    assert ((b["decoder_target_tokens"] != 0).sum(axis=1) == 14).all()
    for row in b["encoder_input_tokens"]:
      assert row[row >= 32000].tolist() == [32099, 32098, 32097]  # <extra_id_0..2>

  # Unshuffled, the first example is the first training document's first 70 tokens.
  first = next(
    task.get_dataset(
      sequence_length=P.feature_lengths(task),
      split="train",
      shuffle=False,
      seed=0,
      try_in_mem_cache=False,
    ).as_numpy_iterator()
  )
  with open(task.source.paths[0], encoding="utf-8") as f:
    head = S.split_documents(f.read(200_000))[:-1]
  doc = next(d for d in head if not S.is_validation_document(d, 0.01))
  chunk = O.uncorrupt(first["inputs"][:-1], first["targets"][:-1], 32099)
  assert chunk.tolist() == list(vocab.encode(doc))[:70]
  print(f"first chunk: {vocab.decode(chunk.tolist())!r}")
