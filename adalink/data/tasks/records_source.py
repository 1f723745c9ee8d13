"""A seqio data source over in-memory annotation records (captions, VQA questions) per split.

The records hold image paths and strings, not images: a split becomes a tf.data dataset of string
columns, sharded by rows and shuffled whole (shuffling paths is cheap), and the task's
preprocessors decode the images. A subclass says what one row is (`rows`) and which columns a
row gives (`columns`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import seqio
import tensorflow as tf


def string_column(values: Sequence[str]) -> tf.Tensor:
  """A [n] string tensor, also for n = 0 (which `tf.constant` could not shape from the list)."""
  return tf.constant(list(values), tf.string, shape=[len(values)])


def ragged_string_column(lists: Sequence[Sequence[str]]) -> tf.RaggedTensor:
  """A [n, None] ragged string tensor (every reference caption, every human answer)."""
  return tf.ragged.constant([list(x) for x in lists], dtype=tf.string, ragged_rank=1)


class RecordsDataSource(seqio.DataSource):
  """Records per split; `rows(split)` are the examples, `columns(rows)` their string columns."""

  def __init__(self, records_by_split: Mapping[str, Sequence[Any]]):
    self._records = {s: list(r) for s, r in records_by_split.items()}
    super().__init__(splits=tuple(self._records))

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def list_shards(self, split: str) -> Sequence[str]:
    return [split]

  def records(self, split: str) -> list:
    if split not in self._records:
      raise ValueError(f"no split {split!r}; available: {tuple(self._records)}")
    return self._records[split]

  def rows(self, split: str) -> list:
    """One entry per example of `split` (by default its records)."""
    return self.records(split)

  def columns(self, rows: list) -> Mapping[str, Any]:
    raise NotImplementedError(f"{type(self).__name__} must say which columns a row gives")

  def num_input_examples(self, split: str) -> int:
    return len(self.rows(split))

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
    rows = self.rows(split)
    if shard_info is not None and shard_info.num_shards > 1:
      rows = rows[shard_info.index :: shard_info.num_shards]
    ds = tf.data.Dataset.from_tensor_slices(dict(self.columns(rows)))
    if shuffle and len(rows) > 1:
      ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    return ds
