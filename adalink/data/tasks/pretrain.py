"""Self-supervised pretraining data: plain-text files as a seqio Task with T5's span corruption or
a prefix-LM ("LM adaptation") objective.

    vocab = get_vocabulary("sentencepiece", ".../spiece.model", extra_ids=100)
    task = get_text_task("../shared/data/text", vocabulary=vocab, inputs_length=512)
    feature_lengths(task)   # {"inputs": 512, "targets": 114}: what packing fills exactly

Corpus format: UTF-8 files with ``\\n`` line endings in which a document is a block of lines and
documents are separated by one blank line (``text.rstrip('\\n').split('\\n\\n')``); blocks that are
only whitespace are skipped. A directory means every ``*.txt`` file in it; a glob or a list of
files may be given instead. Files are read in sorted path order.

Train / validation: a document belongs to "validation" when the first 8 bytes of the MD5 digest of
its UTF-8 bytes, read as a big-endian unsigned integer and divided by 2**64, fall below
``validation_fraction`` (see ``validation_score``). The split is therefore a fixed function of the
text alone (no seed, no file position): the same text always lands in the same split, so the
validation text is never trained on. Documents are chunks of longer books and articles, so a
validation document may share its book with training documents; only its own text is held out.

Reading: one pass over the files (a file at a time, never the whole corpus) records each
document's (file, byte offset, length) and split; ``get_dataset`` then streams the documents by
seeking to them. The index is small (three integers per document) and is rebuilt only when a
file's size or modification time changes. Shuffling permutes the whole document index (reshuffled
every epoch from the seed); sharding gives shard ``i`` of ``n`` the documents ``i::n`` of the
index, so hosts read disjoint documents.

Preprocessing (the Task's preprocessors, in order):
  1. the document text becomes ``targets`` and is tokenised without EOS;
  2. ``concatenate_and_chunk``: the token stream of consecutive documents is cut into chunks of a
     fixed raw length (documents are concatenated without a separator, as T5 does; the last
     incomplete chunk of a finite pass is dropped);
  3. the objective (seeded per example from the seed given to ``get_dataset``):
     * span corruption: ``noise_span_mask`` picks round(L * noise_density) noise tokens in
       round(noise / mean_noise_span_length) spans; ``corrupt`` replaces each noise span in the
       inputs by one sentinel and writes the targets as sentinel + span for each span. Sentinels
       count down from the top of the vocabulary: span k gets ``vocabulary.vocab_size - 1 - k``
       (``<extra_id_k>`` for a SentencePiece vocabulary with extra ids). The raw chunk length
       comes from ``span_corruption_lengths`` so that every full chunk gives exactly
       ``inputs_length`` input tokens and ``targets_length`` target tokens with EOS;
     * prefix LM: chunks of ``inputs_length`` tokens are split at a uniformly random point; the
       inputs are the prefix and the targets the rest (at most ``targets_length - 1`` tokens);
  4. EOS is appended to inputs and targets.

The mask, corruption and split functions are plain numpy (``noise_span_mask``, ``corrupt``,
``uncorrupt``, ``prefix_lm_split_point``) and run inside the tf.data pipeline through
``tf.numpy_function``, so the code the tests check is the code that produces the data.
"""

from __future__ import annotations

import glob
import hashlib
import os
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import seqio
import tensorflow as tf

from adalink.data.tasks import registry
from adalink.data.pipeline.vocab import vocabulary_fingerprint

OBJECTIVES = ("span_corruption", "prefix_lm")
SPLITS = ("train", "validation")
DOCUMENT_SEPARATOR = b"\n\n"
# Chunks shorter than this cannot be corrupted or split (both need a token on each side).
MIN_CHUNK_LENGTH = 2

_LENGTHS_BY_TASK_NAME: dict[str, dict[str, int]] = {}


# ----------------------------------------------------------------------------- pure functions


def noise_counts(
  length: int, noise_density: float, mean_noise_span_length: float
) -> tuple[int, int]:
  """(number of noise tokens, number of noise spans) for a chunk of ``length`` tokens.

  Noise tokens: round(length * noise_density), kept within [1, length - 1]; spans:
  round(noise / mean_noise_span_length), at least 1 and at most the number of noise tokens and
  of non-noise tokens (each span of either kind holds at least one token). Python's round (ties
  to even) is used everywhere, so these counts, the mask and the lengths always agree.
  """
  _check_noise_args(noise_density, mean_noise_span_length)
  if length < MIN_CHUNK_LENGTH:
    raise ValueError(
      f"span corruption needs at least {MIN_CHUNK_LENGTH} tokens, got length={length}"
    )
  num_noise = min(max(int(round(length * noise_density)), 1), length - 1)
  num_spans = int(round(num_noise / mean_noise_span_length))
  num_spans = max(1, min(num_spans, num_noise, length - num_noise))
  return num_noise, num_spans


def _check_noise_args(noise_density: float, mean_noise_span_length: float) -> None:
  if not 0.0 < noise_density < 1.0:
    raise ValueError(f"noise_density must be in (0, 1), got {noise_density!r}")
  if not mean_noise_span_length >= 1.0:
    raise ValueError(f"mean_noise_span_length must be >= 1, got {mean_noise_span_length!r}")


def _random_composition(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
  """``parts`` positive integers summing to ``total``, uniform over all such sequences: the
  part boundaries are ``parts - 1`` distinct cut points drawn from the ``total - 1`` gaps."""
  cuts = np.sort(rng.choice(total - 1, size=parts - 1, replace=False) + 1)
  return np.diff(np.concatenate([[0], cuts, [total]]))


def noise_span_mask(
  length: int, noise_density: float, mean_noise_span_length: float, rng: np.random.Generator
) -> np.ndarray:
  """A boolean mask of ``length`` with True on the tokens to corrupt.

  The noise and non-noise tokens (counts from ``noise_counts``) are each split into the same
  number of spans with random lengths, and the spans alternate, starting with a non-noise span
  and ending with a noise span (T5's layout).
  """
  num_noise, num_spans = noise_counts(length, noise_density, mean_noise_span_length)
  noise_lengths = _random_composition(num_noise, num_spans, rng)
  keep_lengths = _random_composition(length - num_noise, num_spans, rng)
  span_lengths = np.stack([keep_lengths, noise_lengths], axis=1).reshape(-1)
  return np.repeat(np.tile([False, True], num_spans), span_lengths)


def _span_starts(mask: np.ndarray) -> np.ndarray:
  previous = np.concatenate([[False], mask[:-1]])
  return mask & ~previous


def corrupt(tokens, mask, sentinel_start: int) -> tuple[np.ndarray, np.ndarray]:
  """(inputs, targets) of span corruption for ``tokens`` under a noise ``mask``.

  The k-th noise span (k = 0, 1, ...) is replaced in the inputs by the single id
  ``sentinel_start - k``; the targets are, for each span in order, its sentinel followed by the
  span's tokens. No EOS is added.
  """
  tokens = np.asarray(tokens)
  mask = np.asarray(mask, dtype=bool)
  if tokens.ndim != 1 or mask.shape != tokens.shape:
    raise ValueError(
      f"tokens and mask must be 1-D of the same length, got shapes {tokens.shape} and {mask.shape}"
    )
  starts = _span_starts(mask)
  num_spans = int(starts.sum())
  if num_spans and sentinel_start - (num_spans - 1) < 0:
    raise ValueError(f"sentinel_start={sentinel_start} leaves no id for all {num_spans} spans")
  sentinels = (sentinel_start - np.arange(num_spans)).astype(tokens.dtype)
  keep = ~mask | starts
  inputs = tokens.copy()
  inputs[starts] = sentinels
  inputs = inputs[keep]
  noise = tokens[mask]
  targets = np.insert(noise, np.flatnonzero(starts[mask]), sentinels)
  return inputs, targets


def uncorrupt(inputs, targets, sentinel_start: int) -> np.ndarray:
  """The original tokens from span-corrupted ``(inputs, targets)`` (no EOS on either).

  Sentinels are recognised by their expected order (``sentinel_start``, ``sentinel_start - 1``,
  ...), so the inverse is exact whenever no real token equals the next expected sentinel.
  Raises ValueError when the two sides do not describe the same spans.
  """
  inputs = np.asarray(inputs).reshape(-1)
  dtype = inputs.dtype
  inputs = [int(t) for t in inputs]
  targets = [int(t) for t in np.asarray(targets).reshape(-1)]
  spans: list[list[int]] = []
  for t in targets:
    if t == sentinel_start - len(spans):
      spans.append([])
    elif not spans:
      raise ValueError(f"targets must start with sentinel {sentinel_start}, got {t}")
    else:
      spans[-1].append(t)
  out: list[int] = []
  used = 0
  for t in inputs:
    if used < len(spans) and t == sentinel_start - used:
      out.extend(spans[used])
      used += 1
    else:
      out.append(t)
  if used != len(spans):
    raise ValueError(
      f"the targets hold {len(spans)} sentinel spans but the inputs only {used} of their sentinels"
    )
  return np.asarray(out, dtype=dtype)


def span_corruption_lengths(
  inputs_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 3.0
) -> tuple[int, int]:
  """(raw_tokens_length, targets_length) for span corruption filling ``inputs_length``.

  ``raw_tokens_length`` is the longest chunk whose corrupted inputs plus EOS (non-noise tokens +
  one sentinel per span + 1) fit in ``inputs_length``; since that count grows by at most one per
  extra raw token, it equals ``inputs_length`` exactly for the usual settings (densities up to
  one half). ``targets_length`` is that chunk's target count with EOS (noise tokens + one
  sentinel per span + 1). E.g. 512 -> (568, 114), as in T5.
  """
  _check_noise_args(noise_density, mean_noise_span_length)

  def corrupted(length: int) -> tuple[int, int]:
    noise, spans = noise_counts(length, noise_density, mean_noise_span_length)
    return length - noise + spans + 1, noise + spans + 1

  if not isinstance(inputs_length, (int, np.integer)) or isinstance(inputs_length, bool):
    raise ValueError(f"inputs_length must be an integer, got {inputs_length!r}")
  smallest = corrupted(MIN_CHUNK_LENGTH)[0]
  if inputs_length < smallest:
    raise ValueError(
      f"inputs_length={inputs_length} is too short for span corruption: the "
      f"shortest chunk already needs {smallest} input tokens with EOS"
    )
  length = MIN_CHUNK_LENGTH
  while corrupted(length + 1)[0] <= inputs_length:
    length += 1
  return length, corrupted(length)[1]


def prefix_lm_split_point(length: int, max_targets: int, rng: np.random.Generator) -> int:
  """A uniformly random prefix length for a chunk of ``length`` tokens: at least 1, at most
  ``length - 1``, and leaving at most ``max_targets`` tokens to predict."""
  if length < MIN_CHUNK_LENGTH:
    raise ValueError(f"prefix LM needs at least {MIN_CHUNK_LENGTH} tokens, got length={length}")
  if max_targets < 1:
    raise ValueError(f"max_targets must be >= 1, got {max_targets}")
  low = max(1, length - max_targets)
  return int(rng.integers(low, length))


def validation_score(text: str | bytes) -> float:
  """A fixed number in [0, 1) for a document: the first 8 bytes of MD5(UTF-8 text) / 2**64."""
  data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
  return int.from_bytes(hashlib.md5(data).digest()[:8], "big") / 2.0**64


def is_validation_document(text: str | bytes, validation_fraction: float) -> bool:
  """Whether a document belongs to the validation split (see ``validation_score``)."""
  return validation_score(text) < validation_fraction


def split_documents(text: str) -> list[str]:
  """The documents of one file's text: blocks separated by one blank line, blank ones dropped."""
  return [d for d in text.rstrip("\n").split("\n\n") if d.strip()]


# ----------------------------------------------------------------------------- the source


class _Index(NamedTuple):
  """Per split: file number, byte offset and byte length of every document, in file order."""

  file: dict[str, np.ndarray]
  offset: dict[str, np.ndarray]
  length: dict[str, np.ndarray]


def _index_file(path: str, validation_fraction: float) -> dict[str, list[tuple[int, int]]]:
  with open(path, "rb") as f:
    data = f.read()
  try:
    data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not UTF-8 text (byte offset {e.start}: {e.reason})") from None
  found: dict[str, list[tuple[int, int]]] = {s: [] for s in SPLITS}
  end = len(data.rstrip(b"\n"))
  pos = 0
  while pos < end:
    stop = data.find(DOCUMENT_SEPARATOR, pos, end)
    stop = end if stop < 0 else stop
    doc = data[pos:stop]
    if doc.strip():
      split = "validation" if is_validation_document(doc, validation_fraction) else "train"
      found[split].append((pos, stop - pos))
    pos = stop + len(DOCUMENT_SEPARATOR)
  return found


class TextFilesDataSource(seqio.DataSource):
  """A seqio DataSource of documents (``{"text": string}``) from blank-line separated files.

  See the module docstring for the document format, the hash split, shuffling and sharding.
  """

  def __init__(self, paths: Sequence[str], validation_fraction: float):
    if not paths:
      raise ValueError("TextFilesDataSource needs at least one file")
    if not 0.0 < validation_fraction < 1.0:
      raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    self._paths = tuple(paths)
    self._fraction = float(validation_fraction)
    self._index: _Index | None = None
    self._index_key: tuple | None = None
    super().__init__(splits=SPLITS)

  @property
  def paths(self) -> tuple[str, ...]:
    return self._paths

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def list_shards(self, split: str) -> Sequence[str]:
    return list(self._paths)

  def index(self) -> _Index:
    """The document index, built on first use and again whenever a file changed."""
    key = []
    for p in self._paths:
      try:
        st = os.stat(p)
      except FileNotFoundError:
        raise FileNotFoundError(f"text file disappeared: {p}") from None
      key.append((st.st_size, st.st_mtime_ns))
    key = tuple(key)
    if self._index is None or self._index_key != key:
      per_split = {s: ([], [], []) for s in SPLITS}
      for i, p in enumerate(self._paths):
        for split, docs in _index_file(p, self._fraction).items():
          files, offsets, lengths = per_split[split]
          files.extend([i] * len(docs))
          offsets.extend(o for o, _ in docs)
          lengths.extend(n for _, n in docs)
      self._index = _Index(
        {s: np.asarray(v[0], np.int64) for s, v in per_split.items()},
        {s: np.asarray(v[1], np.int64) for s, v in per_split.items()},
        {s: np.asarray(v[2], np.int64) for s, v in per_split.items()},
      )
      self._index_key = key
    return self._index

  def _check_split(self, split: str) -> None:
    if split not in SPLITS:
      raise ValueError(f"unknown split {split!r} for text files; available: {SPLITS}")

  def num_input_examples(self, split: str) -> int:
    self._check_split(split)
    return len(self.index().file[split])

  def read_document(self, file: int, offset: int, length: int) -> bytes:
    with open(self._paths[int(file)], "rb") as f:
      f.seek(int(offset))
      data = f.read(int(length))
    if len(data) != length:
      raise ValueError(
        f"{self._paths[int(file)]}: expected {length} bytes at offset "
        f"{offset}, read {len(data)}; did the file change while reading?"
      )
    return data

  def get_dataset(
    self,
    split: str = "train",
    shuffle: bool = True,
    seed: int | None = None,
    shard_info: seqio.ShardInfo | None = None,
    *,
    sequence_length=None,
    use_cached: bool = False,
    num_epochs: int | None = 1,
  ) -> tf.data.Dataset:
    del sequence_length, use_cached, num_epochs  # part of seqio's interface, unused here
    self._check_split(split)
    index = self.index()
    columns = [index.file[split], index.offset[split], index.length[split]]
    if shard_info is not None and shard_info.num_shards > 1:
      columns = [c[shard_info.index :: shard_info.num_shards] for c in columns]
    n = len(columns[0])
    ds = tf.data.Dataset.from_tensor_slices(tuple(columns))
    if shuffle and n > 1:
      ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def read(file, offset, length):
      text = tf.numpy_function(
        self.read_document, [file, offset, length], tf.string, stateful=False
      )
      text.set_shape([])
      return {"text": text}

    return ds.map(read, num_parallel_calls=tf.data.AUTOTUNE)


def resolve_text_files(data_dir_or_glob) -> list[str]:
  """Sorted absolute paths: every ``*.txt`` in a directory, the matches of a glob, or a list."""
  if isinstance(data_dir_or_glob, (list, tuple)):
    paths = [os.path.abspath(os.fspath(p)) for p in data_dir_or_glob]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
      raise FileNotFoundError(f"text file(s) not found: {missing}")
    if not paths:
      raise ValueError("the list of text files is empty")
    return sorted(paths)
  spec = os.path.abspath(os.fspath(data_dir_or_glob))
  pattern = os.path.join(spec, "*.txt") if os.path.isdir(spec) else spec
  paths = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
  if not paths:
    raise FileNotFoundError(f"no text files match {pattern!r}")
  return paths


# ----------------------------------------------------------------------------- preprocessors


@seqio.map_over_dataset
def text_to_targets(ex):
  return {"targets": ex["text"]}


def concatenate_and_chunk(
  dataset: tf.data.Dataset, chunk_length: int, feature: str = "targets"
) -> tf.data.Dataset:
  """Concatenates the token vectors of consecutive examples and cuts the stream into chunks of
  exactly ``chunk_length`` tokens (``{feature: chunk}``); the incomplete tail is dropped."""
  if chunk_length < 1:
    raise ValueError(f"chunk_length must be positive, got {chunk_length}")
  dtype = dataset.element_spec[feature].dtype

  def step(carry, ex):
    stream = tf.concat([carry, ex[feature]], axis=0)
    full = tf.shape(stream)[0] // chunk_length * chunk_length
    chunks = tf.reshape(stream[:full], [-1, chunk_length])
    return stream[full:], chunks

  ds = dataset.scan(tf.zeros([0], dtype), step)
  return ds.unbatch().map(lambda chunk: {feature: chunk})


def _rng(seed) -> np.random.Generator:
  words = np.asarray(seed, dtype=np.int64).reshape(-1).view(np.uint64)
  return np.random.default_rng([int(w) for w in words])


def _check_lengths(
  sequence_length: Mapping[str, int] | None, produced: Mapping[str, int], objective: str
) -> None:
  if not sequence_length:
    return
  for key, need in produced.items():
    got = sequence_length.get(key)
    if got is not None and got < need:
      raise ValueError(
        f"sequence_length[{key!r}]={got} is shorter than the {need} tokens "
        f"this {objective} task produces; examples would be truncated. Build "
        f"the task with inputs_length/targets_length matching the batch "
        f"lengths (see pretrain.feature_lengths)"
      )


@seqio.map_over_dataset(num_seeds=1)
def _span_corrupt_example(ex, seed, noise_density, mean_noise_span_length, sentinel_start):
  def fn(tokens, seed):
    mask = noise_span_mask(len(tokens), noise_density, mean_noise_span_length, _rng(seed))
    return corrupt(tokens, mask, sentinel_start)

  tokens = ex["targets"]
  inputs, targets = tf.numpy_function(
    fn, [tokens, tf.stack(seed)], [tokens.dtype] * 2, stateful=False
  )
  inputs.set_shape([None])
  targets.set_shape([None])
  return {"inputs": inputs, "targets": targets}


@seqio.map_over_dataset(num_seeds=1)
def _prefix_lm_example(ex, seed, max_targets):
  def fn(tokens, seed):
    return np.int64(prefix_lm_split_point(len(tokens), max_targets, _rng(seed)))

  tokens = ex["targets"]
  split = tf.numpy_function(fn, [tokens, tf.stack(seed)], tf.int64, stateful=False)
  split.set_shape([])
  return {"inputs": tokens[:split], "targets": tokens[split:]}


def _long_enough(ex):
  return tf.shape(ex["targets"])[0] >= MIN_CHUNK_LENGTH


def span_corruption(
  noise_density: float, mean_noise_span_length: float, lengths: Mapping[str, int]
):
  """The seqio preprocessor corrupting ``targets`` chunks into ``inputs``/``targets``.

  ``lengths`` (with EOS) is what full chunks produce; a batch ``sequence_length`` shorter than
  it is refused instead of silently truncating sentinels away.
  """

  def preprocess(dataset, sequence_length=None, output_features=None):
    _check_lengths(sequence_length, lengths, "span_corruption")
    vocabulary = output_features["targets"].vocabulary
    return _span_corrupt_example(
      dataset.filter(_long_enough),
      noise_density=noise_density,
      mean_noise_span_length=mean_noise_span_length,
      sentinel_start=vocabulary.vocab_size - 1,
    )

  return preprocess


def prefix_lm(lengths: Mapping[str, int]):
  """The seqio preprocessor splitting ``targets`` chunks into a prefix (``inputs``) and the
  rest (``targets``, at most ``lengths["targets"] - 1`` tokens before EOS)."""

  def preprocess(dataset, sequence_length=None):
    _check_lengths(sequence_length, lengths, "prefix_lm")
    return _prefix_lm_example(dataset.filter(_long_enough), max_targets=lengths["targets"] - 1)

  return preprocess


# ----------------------------------------------------------------------------- the task


def get_text_task(
  data_dir_or_glob,
  objective: str = "span_corruption",
  vocabulary: seqio.Vocabulary | None = None,
  inputs_length: int = 512,
  targets_length: int | None = None,
  *,
  validation_fraction: float = 0.01,
  noise_density: float = 0.15,
  mean_noise_span_length: float = 3.0,
) -> seqio.Task:
  """A seqio Task over plain-text files with splits "train" and "validation".

  Args:
    data_dir_or_glob: a directory (its ``*.txt`` files), a glob, or a list of files.
    objective: "span_corruption" or "prefix_lm".
    vocabulary: a seqio vocabulary (required). Span corruption takes its sentinels from the top
      ids, so the vocabulary needs at least as many extra ids as a chunk has spans
      (``get_vocabulary(..., extra_ids=100)`` as in T5).
    inputs_length: encoder length with EOS that every full example fills.
    targets_length: decoder length with EOS. Span corruption: default (and minimum) the length
      its chunks produce, ``span_corruption_lengths(inputs_length, ...)[1]``. Prefix LM: default
      ``inputs_length``; the split leaves at most ``targets_length - 1`` tokens to predict.
    validation_fraction: share of documents, by a fixed hash of their text, held out.
    noise_density, mean_noise_span_length: span corruption's parameters (T5: 0.15 and 3).

  Randomness (document order, masks, split points) follows the ``seed`` given to
  ``task.get_dataset`` (``features.make_batches(seed=...)``).
  """
  if objective not in OBJECTIVES:
    raise ValueError(f"unknown pretraining objective {objective!r}; expected one of {OBJECTIVES}")
  if vocabulary is None:
    raise ValueError(
      "get_text_task needs vocabulary= (e.g. get_vocabulary('sentencepiece', path, extra_ids=100))"
    )
  if not isinstance(inputs_length, (int, np.integer)) or inputs_length < 2:
    raise ValueError(f"inputs_length must be an integer >= 2, got {inputs_length!r}")
  if targets_length is not None and (
    not isinstance(targets_length, (int, np.integer)) or targets_length < 2
  ):
    raise ValueError(f"targets_length must be an integer >= 2 or None, got {targets_length!r}")
  if not 0.0 < validation_fraction < 1.0:
    raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
  paths = resolve_text_files(data_dir_or_glob)

  if objective == "span_corruption":
    chunk_length, needed_targets = span_corruption_lengths(
      int(inputs_length), noise_density, mean_noise_span_length
    )
    if targets_length is None:
      targets_length = needed_targets
    elif targets_length < needed_targets:
      raise ValueError(
        f"targets_length={targets_length} is too short for span corruption with "
        f"inputs_length={inputs_length}, noise_density={noise_density}, "
        f"mean_noise_span_length={mean_noise_span_length}: the targets need "
        f"{needed_targets} tokens with EOS"
      )
    _, max_spans = noise_counts(chunk_length, noise_density, mean_noise_span_length)
    if vocabulary.extra_ids < max_spans:
      raise ValueError(
        f"span corruption takes up to {max_spans} sentinel ids from the top of the "
        f"vocabulary, but the vocabulary ({vocabulary_fingerprint(vocabulary)}) has "
        f"extra_ids={vocabulary.extra_ids}; build it with extra_ids >= {max_spans} "
        f"(T5 uses 100) so sentinels are not real tokens"
      )
    lengths = {"inputs": int(inputs_length), "targets": int(targets_length)}
    objective_fn = span_corruption(noise_density, mean_noise_span_length, lengths)
  else:
    targets_length = int(inputs_length if targets_length is None else targets_length)
    chunk_length = int(inputs_length)
    lengths = {"inputs": int(inputs_length), "targets": targets_length}
    objective_fn = prefix_lm(lengths)

  config = {
    "files": [(p, os.path.getsize(p)) for p in paths],
    "objective": objective,
    "lengths": lengths,
    "chunk_length": chunk_length,
    "validation_fraction": float(validation_fraction),
    "noise": [float(noise_density), float(mean_noise_span_length)]
    if objective == "span_corruption"
    else None,
    "vocab": vocabulary_fingerprint(vocabulary),
  }
  features = {
    "inputs": seqio.Feature(vocabulary, add_eos=True),
    "targets": seqio.Feature(vocabulary, add_eos=True),
  }

  def build(task_name: str) -> seqio.Task:
    source = TextFilesDataSource(paths, validation_fraction)
    return seqio.Task(
      task_name,
      source=source,
      output_features=features,
      preprocessors=[
        text_to_targets,
        _tokenize_without_eos,
        _partial(concatenate_and_chunk, chunk_length=chunk_length),
        objective_fn,
        seqio.preprocessors.append_eos_after_trim,
      ],
      metric_fns=[],
    )

  task = registry.get_or_register_task(f"adalink_text_{objective}", config, build)
  _LENGTHS_BY_TASK_NAME[task.name] = dict(lengths)
  return task


def _tokenize_without_eos(dataset, output_features):
  return seqio.preprocessors.tokenize(
    dataset, output_features, copy_pretokenized=False, with_eos=False
  )


def _partial(fn, **kwargs):
  def bound(dataset):
    return fn(dataset, **kwargs)

  bound.__name__ = fn.__name__
  return bound


def feature_lengths(task: seqio.Task | str) -> dict[str, int]:
  """{"inputs", "targets"}: the lengths (with EOS) a task from ``get_text_task`` fills."""
  name = task if isinstance(task, str) else task.name
  if name not in _LENGTHS_BY_TASK_NAME:
    raise ValueError(f"{name!r} is not a task made by get_text_task in this process")
  return dict(_LENGTHS_BY_TASK_NAME[name])
