"""The plain-text corpus of pretraining as a seqio DataSource: documents in blank-line separated
files, a fixed hash split into "train" and "validation", and streaming reads through a small index.

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
"""

from __future__ import annotations

import glob
import hashlib
import os
from typing import NamedTuple, Sequence

import numpy as np
import seqio
import tensorflow as tf

SPLITS = ("train", "validation")
DOCUMENT_SEPARATOR = b"\n\n"


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
