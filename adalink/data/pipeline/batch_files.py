"""Model-ready batches saved as NumPy files, read back without TensorFlow.

The seqio pipeline (tokenising, span corruption, packing) needs TensorFlow, which accelerator
machines do not always have. `scripts/pretokenize.py` runs the pipeline where TensorFlow is, and
writes the batches it yields, feature for feature, to a directory:

  DIR/meta.json                          format, batch sizes, lengths, feature dtypes, source
  DIR/train-00000.npz, train-00001.npz   up to `batches_per_shard` batches each, stacked
  DIR/validation-00000.npz ...

Each feature is stored in the narrowest integer type that holds its values (token ids fit in
uint16 for a 32k vocabulary) and compressed, and comes back in the dtype the pipeline gave it.
This module needs only NumPy, so `data.kind = 'batch_files'` trains and evaluates on a machine
without TensorFlow.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional

import numpy as np

FORMAT = "adalink-batches-v1"
META = "meta.json"


def _narrow(x: np.ndarray) -> np.ndarray:
  if not np.issubdtype(x.dtype, np.integer):
    return x
  lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
  for dtype in (np.uint8, np.uint16, np.int16, np.int32):
    info = np.iinfo(dtype)
    if info.min <= lo and hi <= info.max:
      return x.astype(dtype)
  return x


def write_split(
  out_dir: str,
  split: str,
  batches: Iterable[Mapping[str, np.ndarray]],
  num_batches: int,
  batches_per_shard: int = 100,
) -> Dict[str, Any]:
  """Writes the first `num_batches` of `batches` as `split-NNNNN.npz` shards.
  -> the split's entry for meta.json (shard names, batch count, batch size, feature dtypes)."""
  shards, pending, count, batch_size, dtypes = [], [], 0, None, {}

  def flush():
    name = f"{split}-{len(shards):05d}.npz"
    stacked = {k: _narrow(np.stack([b[k] for b in pending])) for k in pending[0]}
    np.savez_compressed(os.path.join(out_dir, name), **stacked)
    shards.append({"file": name, "batches": len(pending)})
    pending.clear()

  for batch in batches:
    if count == num_batches:
      break
    batch = {k: np.asarray(v) for k, v in batch.items()}
    rows = {k: v.shape[0] for k, v in batch.items()}
    if len(set(rows.values())) != 1:
      raise ValueError(f"{split} batch {count}: features disagree on the batch size: {rows}")
    if batch_size is None:
      batch_size = next(iter(rows.values()))
      dtypes = {k: str(v.dtype) for k, v in batch.items()}
    elif set(batch) != set(dtypes) or next(iter(rows.values())) != batch_size:
      raise ValueError(
        f"{split} batch {count}: features {sorted(batch)} x {rows} differ from the "
        f"first batch's {sorted(dtypes)} x {batch_size}"
      )
    pending.append(batch)
    count += 1
    if len(pending) == batches_per_shard:
      flush()
  if pending:
    flush()
  if count == 0:
    raise ValueError(f"no {split} batches to write")
  return {"shards": shards, "batches": count, "batch_size": batch_size, "dtypes": dtypes}


def write_meta(
  out_dir: str, splits: Mapping[str, Any], lengths: Mapping[str, int], source: Mapping[str, Any]
) -> str:
  path = os.path.join(out_dir, META)
  with open(path, "w") as f:
    json.dump(
      {"format": FORMAT, "lengths": dict(lengths), "splits": dict(splits), "source": dict(source)},
      f,
      indent=1,
      sort_keys=True,
    )
  return path


class BatchFiles:
  """A directory written by `scripts/pretokenize.py`: its metadata and its batches."""

  def __init__(self, directory: str):
    self.directory = directory
    path = os.path.join(directory, META)
    if not os.path.exists(path):
      raise FileNotFoundError(
        f"{directory} holds no saved batches: no {META} (write them with scripts/pretokenize.py)"
      )
    with open(path) as f:
      self.meta = json.load(f)
    if self.meta.get("format") != FORMAT:
      raise ValueError(f"{path}: format {self.meta.get('format')!r}, expected {FORMAT!r}")
    self.lengths = {k: int(v) for k, v in self.meta["lengths"].items()}
    self.source = self.meta.get("source", {})
    for split in self.meta["splits"].values():
      for shard in split["shards"]:
        if not os.path.exists(os.path.join(directory, shard["file"])):
          raise FileNotFoundError(f"{path} lists {shard['file']}, which is missing")

  def split(self, name: str) -> Dict[str, Any]:
    if name not in self.meta["splits"]:
      raise KeyError(
        f"{os.path.join(self.directory, META)} has no {name!r} split; it has "
        f"{sorted(self.meta['splits'])}"
      )
    return self.meta["splits"][name]

  def batch_size(self, split: str) -> int:
    return int(self.split(split)["batch_size"])

  def num_batches(self, split: str) -> int:
    return int(self.split(split)["batches"])

  def batches(
    self, split: str, start: int = 0, repeat: bool = False, on_wrap: Optional[Any] = None
  ) -> Iterator[Dict[str, np.ndarray]]:
    """Batch `start`, `start + 1`, ... of `split`, in the pipeline's dtypes; with `repeat`, after
    the last batch it starts over (calling `on_wrap(epoch)`), so a run's data position keeps
    counting."""
    shards = self.split(split)["shards"]
    dtypes = self.split(split)["dtypes"]
    total = self.num_batches(split)
    if not repeat and start >= total:
      return
    epoch, index = divmod(start, total)
    while True:
      offset = 0
      for shard in shards:
        n = shard["batches"]
        if index >= offset + n:
          offset += n
          continue
        with np.load(os.path.join(self.directory, shard["file"])) as data:
          arrays = {k: data[k] for k in data.files}
        for i in range(index - offset, n):
          yield {k: v[i].astype(dtypes[k]) for k, v in arrays.items()}
        index = offset = offset + n
      if not repeat:
        return
      epoch, index = epoch + 1, 0
      if on_wrap is not None:
        on_wrap(epoch)
