"""Self-supervised pretraining data: plain-text files as a seqio Task with T5's span corruption or
a prefix-LM ("LM adaptation") objective.

    vocab = get_vocabulary("sentencepiece", ".../spiece.model", extra_ids=100)
    task = get_text_task("../shared/data/text", vocabulary=vocab, inputs_length=512)
    feature_lengths(task)   # {"inputs": 512, "targets": 114}: what packing fills exactly

This module assembles and registers the Task; its parts live next to it:
- ``pretrain_source``: the corpus format, the fixed hash split into "train" and "validation", and
  the streaming ``TextFilesDataSource`` (shuffling, sharding);
- ``pretrain_preprocessors``: the Task's preprocessors in order (tokenise without EOS, concatenate
  and chunk, the objective, append EOS);
- ``pretrain_objectives``: span corruption and the prefix-LM split as plain NumPy
  (``noise_span_mask``, ``corrupt``, ``uncorrupt``, ``span_corruption_lengths``,
  ``prefix_lm_split_point``).

Tasks are registered with seqio as ``adalink_text_<objective>_<digest>`` (see ``registry``): the
same files, objective, lengths and vocabulary give back the task already registered.
"""

from __future__ import annotations

import os

import numpy as np
import seqio

from adalink.data.pipeline.vocab import vocabulary_fingerprint
from adalink.data.tasks import registry
from adalink.data.tasks.pretrain_objectives import noise_counts, span_corruption_lengths
from adalink.data.tasks.pretrain_preprocessors import (
  concatenate_and_chunk,
  prefix_lm,
  span_corruption,
  text_to_targets,
  tokenize_without_eos,
)
from adalink.data.tasks.pretrain_source import TextFilesDataSource, resolve_text_files

OBJECTIVES = ("span_corruption", "prefix_lm")

_LENGTHS_BY_TASK_NAME: dict[str, dict[str, int]] = {}


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
        tokenize_without_eos,
        _partial(concatenate_and_chunk, chunk_length=chunk_length),
        objective_fn,
        seqio.preprocessors.append_eos_after_trim,
      ],
      metric_fns=[],
    )

  task = registry.get_or_register_task(f"adalink_text_{objective}", config, build)
  _LENGTHS_BY_TASK_NAME[task.name] = dict(lengths)
  return task


def _partial(fn, **kwargs):
  """``fn`` with ``kwargs`` bound: a preprocessor that takes only the dataset, named like ``fn``."""

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
