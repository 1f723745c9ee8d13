"""The seqio preprocessors of the pretraining Task, from document text to model examples.

In the order ``pretrain.get_text_task`` chains them:
  1. ``text_to_targets`` and ``tokenize_without_eos``: the document text becomes ``targets`` and is
     tokenised without EOS;
  2. ``concatenate_and_chunk``: the token stream of consecutive documents is cut into chunks of a
     fixed raw length (documents are concatenated without a separator, as T5 does; the last
     incomplete chunk of a finite pass is dropped);
  3. the objective, ``span_corruption`` or ``prefix_lm`` (seeded per example from the seed given
     to ``get_dataset``), running the NumPy functions of ``pretrain_objectives`` through
     ``tf.numpy_function``. Span corruption's raw chunk length comes from
     ``span_corruption_lengths``; prefix LM's chunks of ``inputs_length`` tokens leave at most
     ``targets_length - 1`` tokens to predict;
  4. EOS is appended to inputs and targets (``seqio.preprocessors.append_eos_after_trim``).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import seqio
import tensorflow as tf

from adalink.data.tasks.pretrain_objectives import (
  MIN_CHUNK_LENGTH,
  corrupt,
  noise_span_mask,
  prefix_lm_split_point,
)


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


def tokenize_without_eos(dataset, output_features):
  """Tokenises the text features like ``seqio.preprocessors.tokenize`` but without EOS, which is
  appended only after the stream has been chunked and the objective applied."""
  return seqio.preprocessors.tokenize(
    dataset, output_features, copy_pretokenized=False, with_eos=False
  )
