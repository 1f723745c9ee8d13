"""seqio Tasks for the GLUE tasks in T5's text-to-text form, and the ``glue`` mixture.

Built from arguments rather than a module-level registry, so a config picks the source and
vocabulary::

    task = get_glue_task("rte", source="tsv", data_dir=".../glue_data", vocabulary=vocab)
    mix = get_glue_mixture(tasks=("sst2", "rte"), cap=2**16, data_dir=..., vocabulary=vocab)

Sources: ``"tsv"`` reads the standard ``glue_data/`` layout (``<TASK>/train.tsv``, ``dev.tsv``,
MNLI's ``dev_matched.tsv``/``dev_mismatched.tsv``); ``"tfds"`` reads TFDS ``glue/<task>`` (needs a
prepared TFDS data dir or internet). Both yield the same examples.

Each example after preprocessing has ``inputs``/``targets`` (tokens, EOS appended),
``inputs_pretokenized``/``targets_pretokenized`` (text), ``label`` (class id, or the STS-B score),
``idx`` and ``task_id`` (index in ``glue_spec.GLUE_TASKS``, for per-task AdaLink). Splits are the
files present: ``train``, ``validation`` (MNLI: ``validation_matched``/``validation_mismatched``),
``test``.

For evaluation without seqio's Evaluator, ``task.postprocess_fn(text, example=ex, is_target=...)``
maps decoded text to a label and each of ``task.metric_fns`` maps ``(targets, predictions)`` to
``{metric: percent}``; ``get_spec(task)`` gives the pure-Python spec behind a task.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import seqio
import tensorflow as tf

from adalink.data.tasks import glue_source, glue_spec, mixtures, registry
from adalink.data.tasks.glue_spec import GLUE_TASKS, GlueTaskSpec
from adalink.data.pipeline.vocab import get_vocabulary, vocabulary_fingerprint

SOURCES = ("tsv", "tfds")
DEFAULT_TFDS_VERSION = "2.0.0"

_SPEC_BY_TASK_NAME: dict[str, GlueTaskSpec] = {}


class GlueTsvDataSource(seqio.DataSource):
  """A seqio DataSource over one GLUE task in the ``glue_data/`` TSV layout.

  Files are parsed once per (path, size, mtime) and held in memory (MNLI, the largest, is about
  400k short rows). Sharding is by example index (``rows[index::num_shards]``) before shuffling, so
  shards are disjoint whatever the seed.
  """

  def __init__(self, spec: GlueTaskSpec, data_dir: str, on_bad_row: str = "error"):
    self._spec = spec
    self._data_dir = data_dir
    self._on_bad_row = on_bad_row
    self._cache: dict[str, tuple[tuple, glue_source.GlueColumns]] = {}
    super().__init__(splits=glue_source.available_splits(spec, data_dir))

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def list_shards(self, split: str) -> Sequence[str]:
    return [glue_source.split_path(self._spec, self._data_dir, split)]

  def columns(self, split: str) -> glue_source.GlueColumns:
    if split not in self.splits:
      raise ValueError(
        f"GLUE task {self._spec.name!r} has no {split!r} split under "
        f"{self._data_dir!r}; available: {tuple(self.splits)}"
      )
    path = glue_source.split_path(self._spec, self._data_dir, split)
    st = os.stat(path)
    key = (st.st_size, st.st_mtime_ns)
    cached = self._cache.get(split)
    if cached is None or cached[0] != key:
      cols = glue_source.load_split(self._spec, self._data_dir, split, self._on_bad_row)
      cached = (key, cols)
      self._cache[split] = cached
    return cached[1]

  def num_input_examples(self, split: str) -> int:
    return len(self.columns(split))

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
    cols = self.columns(split)
    label_dtype = np.float32 if self._spec.is_regression else np.int64  # as TFDS glue
    data = {"idx": np.asarray(cols.idx, np.int32), "label": np.asarray(cols.label, label_dtype)}
    for field, values in cols.text.items():
      data[field] = np.asarray(values, dtype=object)
    if shard_info is not None and shard_info.num_shards > 1:
      data = {k: v[shard_info.index :: shard_info.num_shards] for k, v in data.items()}
    n = len(data["idx"])
    ds = tf.data.Dataset.from_tensor_slices(
      {k: tf.constant(v, dtype=tf.string) if v.dtype == object else v for k, v in data.items()}
    )
    if shuffle and n > 1:
      # A full shuffle at the source; reshuffled per epoch, reproducibly from the seed.
      ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds


def _clean_text(t: tf.Tensor) -> tf.Tensor:
  # Collapse whitespace runs and trim, so stray spaces (SST-2 rows end in one) and tabs inside a
  # field never reach the tokenizer as separate tokens.
  return tf.strings.strip(tf.strings.regex_replace(t, r"\s+", " "))


def text_to_text_fn(spec: GlueTaskSpec):
  """The preprocessor mapping a raw GLUE example to T5's text-to-text form."""
  label_names = None if spec.is_regression else tf.constant(list(spec.label_names))

  @seqio.map_over_dataset
  def fn(ex):
    parts = [spec.benchmark]
    for field in spec.text_fields:
      parts += [f"{field}:", _clean_text(ex[field])]
    label = ex["label"]
    if spec.is_regression:
      five = tf.constant(5.0, tf.float32)
      # Rounded to the nearest 0.2 (ties to even), as T5's STS-B preprocessor writes it.
      targets = tf.strings.as_string(
        tf.round(tf.cast(label, tf.float32) * five) / five, precision=1
      )
    else:
      safe = tf.maximum(tf.cast(label, tf.int32), 0)
      targets = tf.where(tf.equal(label, -1), tf.constant("<unk>"), tf.gather(label_names, safe))
    return {
      "inputs": tf.strings.join(parts, separator=" "),
      "targets": targets,
      "label": label,
      "idx": tf.cast(ex["idx"], tf.int32),
      "task_id": tf.constant(spec.task_id, tf.int32),
    }

  return fn


def _source(
  spec: GlueTaskSpec,
  source: str,
  data_dir: str | None,
  tfds_data_dir: str | None,
  tfds_version: str,
  on_bad_row: str,
) -> seqio.DataSource:
  if source == "tsv":
    if data_dir is None:
      raise ValueError("source='tsv' needs data_dir= (the folder holding SST-2/, RTE/, ...)")
    if not os.path.isdir(data_dir):
      raise FileNotFoundError(f"GLUE data_dir not found: {data_dir!r}")
    task_dir = os.path.join(data_dir, spec.tsv_dir)
    if not os.path.isdir(task_dir):
      raise FileNotFoundError(f"GLUE task folder for {spec.name!r} not found: {task_dir!r}")
    src = GlueTsvDataSource(spec, data_dir, on_bad_row)
    if not src.splits:
      raise FileNotFoundError(
        f"no split files of {spec.name!r} in {task_dir!r}; expected any "
        f"of {sorted(set(spec.tsv_split_files.values()))}"
      )
    return src
  splits = spec.tfds_splits or {s: s for s in spec.tsv_split_files}
  return seqio.TfdsDataSource(
    tfds_name=f"glue/{spec.benchmark}:{tfds_version}", tfds_data_dir=tfds_data_dir, splits=splits
  )


def get_glue_task(
  name: str,
  source: str = "tsv",
  data_dir: str | os.PathLike | None = None,
  vocabulary: seqio.Vocabulary | None = None,
  *,
  tfds_data_dir: str | os.PathLike | None = None,
  tfds_version: str = DEFAULT_TFDS_VERSION,
  on_bad_row: str = "error",
) -> seqio.Task:
  """A seqio Task for GLUE task ``name`` (see ``glue_spec.GLUE_TASK_NAMES``).

  Args:
    name: "cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", or the evaluation views
      "mnli_matched" / "mnli_mismatched" (whose "validation" split is that MNLI dev file).
    source: "tsv" (``data_dir`` in the glue_data layout) or "tfds".
    data_dir: the glue_data folder, for source="tsv".
    vocabulary: a seqio vocabulary; default the byte vocabulary (no download).
    tfds_data_dir, tfds_version: for source="tfds".
    on_bad_row: "error" (raise, naming file and line) or "skip" (drop, warn with the count).
  """
  spec = glue_spec.get_spec(name)
  if source not in SOURCES:
    raise ValueError(f"unknown GLUE source {source!r}; expected one of {SOURCES}")
  if on_bad_row not in glue_source.ON_BAD_ROW:
    raise ValueError(f"on_bad_row must be one of {glue_source.ON_BAD_ROW}, got {on_bad_row!r}")
  vocabulary = vocabulary or get_vocabulary("byte")
  data_dir = os.path.abspath(data_dir) if data_dir is not None else None
  tfds_data_dir = os.path.abspath(tfds_data_dir) if tfds_data_dir is not None else None
  src = _source(spec, source, data_dir, tfds_data_dir, tfds_version, on_bad_row)
  config = {
    "task": name,
    "source": source,
    "data_dir": data_dir if source == "tsv" else None,
    "tfds": [tfds_data_dir, tfds_version] if source == "tfds" else None,
    "on_bad_row": on_bad_row,
    "vocab": vocabulary_fingerprint(vocabulary),
  }
  features = {
    "inputs": seqio.Feature(vocabulary, add_eos=True),
    "targets": seqio.Feature(vocabulary, add_eos=True),
  }

  def build(task_name: str) -> seqio.Task:
    return seqio.Task(
      task_name,
      source=src,
      output_features=features,
      preprocessors=[
        text_to_text_fn(spec),
        seqio.preprocessors.tokenize,
        seqio.preprocessors.append_eos_after_trim,
      ],
      postprocess_fn=spec.postprocess_fn_for(
        lambda text: vocabulary.decode(vocabulary.encode(text))
      ),
      metric_fns=spec.metric_fns,
    )

  task = registry.get_or_register_task(f"adalink_glue_{name}_{source}", config, build)
  _SPEC_BY_TASK_NAME[task.name] = spec
  return task


def get_spec(task: seqio.Task | str) -> GlueTaskSpec:
  """The GLUE spec behind a task made by ``get_glue_task`` (or a GLUE task name)."""
  name = task if isinstance(task, str) else task.name
  if name in _SPEC_BY_TASK_NAME:
    return _SPEC_BY_TASK_NAME[name]
  return glue_spec.get_spec(name)


def get_glue_mixture(
  tasks: Sequence[str | seqio.Task] = GLUE_TASKS,
  cap: int | None = mixtures.DEFAULT_CAP,
  source: str = "tsv",
  data_dir: str | os.PathLike | None = None,
  vocabulary: seqio.Vocabulary | None = None,
  *,
  tfds_data_dir: str | os.PathLike | None = None,
  tfds_version: str = DEFAULT_TFDS_VERSION,
  on_bad_row: str = "error",
) -> seqio.Mixture:
  """The multi-task GLUE mixture, examples-proportional on train sizes with ``cap``.

  Every example carries ``task_id`` (its task's index in ``GLUE_TASKS``) so a per-task AdaLink can
  route it; ``features.make_batches`` keeps that feature. ``tasks`` may mix names and Tasks from
  ``get_glue_task``; all must have a train split (e.g. leave out QNLI, MNLI and QQP with the shared
  data, which lacks their train files).
  """
  vocabulary = vocabulary or get_vocabulary("byte")
  built = []
  for t in tasks:
    if isinstance(t, str):
      t = get_glue_task(
        t,
        source,
        data_dir,
        vocabulary,
        tfds_data_dir=tfds_data_dir,
        tfds_version=tfds_version,
        on_bad_row=on_bad_row,
      )
    built.append(t)
  names = [t.name for t in built]
  if len(set(names)) != len(names):
    raise ValueError(f"duplicate tasks in the mixture: {names}")
  rates = mixtures.examples_proportional_rates(built, "train", cap)
  return mixtures.build_mixture("adalink_glue_mixture", built, rates)
