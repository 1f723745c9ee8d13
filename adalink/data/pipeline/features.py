"""Turns seqio tasks and mixtures into the model's numpy batches, deterministically.

Model features per batch (all numpy; padding is token 0):

- ``encoder_input_tokens`` [B, L_in] int32
- ``decoder_input_tokens`` [B, L_tgt] int32: targets shifted right with 0 as BOS
- ``decoder_target_tokens`` [B, L_tgt] int32
- ``decoder_loss_weights`` [B, L_tgt] float32: 1.0 on real target tokens
- with ``pack=True`` also ``encoder_segment_ids``, ``encoder_positions``, ``decoder_segment_ids``,
  ``decoder_positions`` [B, L] int32
- ``task_id`` [B] int32 when examples carry one (every GLUE task and the GLUE mixture): the index of
  the example's task in ``glue_spec.GLUE_TASKS``
- ``images`` [B, H, W, 3] float32 for captioning tasks
- any ``passthrough`` features asked for (e.g. ``targets_pretokenized``, ``label``, ``idx``), as
  numpy arrays (strings as ``bytes`` objects)

Token features come from seqio's ``EncDecFeatureConverter``. Packing puts several examples in one
row, so it cannot carry per-example features: packing a multi-task mixture or a captioning task is
an error; a single task's constant ``task_id`` is kept.

Order is a pure function of (seed, shard_index, num_shards): sources shuffle with the seed, mixtures
sample with it, and tf.data runs deterministically. Shards split examples, not batches, so each host
sees a disjoint part of every epoch.

Entry points: ``make_batches`` (task/mixture -> numpy batches), ``make_dataset`` (the same as a
batched tf.data pipeline), ``convert_dataset`` + ``batch_dataset`` (any tf.data dataset of seqio
examples -> model features -> batches), ``iter_examples`` (raw examples in unshuffled order, for
per-example evaluation data that cannot be batched).
"""

from __future__ import annotations

import functools
from typing import Iterator, Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf
from tensorflow.python.autograph.core import ag_ctx

TOKEN_TASK_FEATURES = ("inputs", "targets")
# Features kept without being asked for, whenever examples carry them.
AUTO_EXTRAS = ("task_id", "image")
_RENAMES = {"image": "images"}

Provider = seqio.Task | seqio.Mixture | str


def _without_autograph(build):
  """Builds an unpacked pipeline with tf.data tracing its map functions as written.

  seqio's token preprocessors and this module's maps are plain graph code (tf.cond, tf ops), so
  autograph's source rewriting buys nothing there, and it costs about 8 s of parsing per process
  on the first pipeline built (every `scripts/train.py` start). tf.data converts a map function
  only when the autograph status in effect while it traces is enabled or unspecified; this sets
  it to disabled for the build. Packing is left alone: seqio's packer loops over tensors in
  Python and needs autograph.
  """

  @functools.wraps(build)
  def wrapper(*args, **kwargs):
    if kwargs.get("pack"):
      return build(*args, **kwargs)
    with ag_ctx.ControlStatusCtx(status=ag_ctx.Status.DISABLED):
      return build(*args, **kwargs)

  return wrapper


class _EncDecWithExtras(seqio.EncDecFeatureConverter):
  """Unpacked EncDecFeatureConverter that carries fixed-shape extra features through untouched.

  seqio's converter would trim/pad every pass-through feature to a sequence length, which breaks
  scalars (``task_id``) and images; only the token features are padded here.
  """

  def _convert_features(
    self, ds: tf.data.Dataset, task_feature_lengths: Mapping[str, int]
  ) -> tf.data.Dataset:
    token_lengths = {k: task_feature_lengths[k] for k in TOKEN_TASK_FEATURES}
    ds = self._pack_or_pad(ds, token_lengths)
    return ds.map(self._convert_example, num_parallel_calls=tf.data.AUTOTUNE)


def _resolve(provider: Provider) -> seqio.Task | seqio.Mixture:
  if isinstance(provider, str):
    return seqio.get_mixture_or_task(provider)
  if not isinstance(provider, (seqio.Task, seqio.Mixture)):
    raise TypeError(f"expected a seqio Task, Mixture or registered name, got {type(provider)}")
  return provider


def _extra_spec(name: str, spec: tf.TensorSpec) -> tuple[seqio.FeatureConverter.FeatureSpec, int]:
  """The converter spec and 'length' of a pass-through feature, which must have a fixed shape."""
  shape = spec.shape
  if not shape.is_fully_defined():
    raise ValueError(
      f"feature {name!r} has a variable shape {shape}; only fixed-shape features "
      f"can be batched (read variable ones, such as caption references, from the "
      f"task's examples instead)"
    )
  length = shape[0] if shape.rank else 1  # rank-0 features are exempt from seqio's length checks
  return seqio.FeatureConverter.FeatureSpec(dtype=spec.dtype, rank=shape.rank), int(length)


@_without_autograph
def make_dataset(
  task_or_mixture: Provider,
  split: str,
  feature_lengths: Mapping[str, int],
  batch_size: int,
  *,
  shuffle: bool = True,
  seed: int = 0,
  shard_index: int = 0,
  num_shards: int = 1,
  repeat: bool = False,
  pack: bool = False,
  drop_remainder: bool | None = None,
  passthrough: Sequence[str] = (),
) -> tf.data.Dataset:
  """The batched tf.data pipeline behind ``make_batches`` (same arguments)."""
  provider = _resolve(task_or_mixture)
  if set(feature_lengths) != set(TOKEN_TASK_FEATURES):
    raise ValueError(
      f"feature_lengths must give exactly {TOKEN_TASK_FEATURES}, got {sorted(feature_lengths)}"
    )
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  if not 0 <= shard_index < num_shards:
    raise ValueError(f"need 0 <= shard_index < num_shards, got {shard_index}, {num_shards}")
  if split not in provider.splits:
    raise ValueError(f"{provider.name!r} has no split {split!r}; it has {tuple(provider.splits)}")
  if drop_remainder is None:
    drop_remainder = repeat  # an endless stream wants fixed shapes; one epoch wants every example
  shard_info = seqio.ShardInfo(shard_index, num_shards) if num_shards > 1 else None
  num_epochs = None if repeat else 1
  lengths = dict(feature_lengths)
  common = dict(
    sequence_length=lengths,
    split=split,
    shuffle=shuffle,
    seed=seed,
    shard_info=shard_info,
    num_epochs=num_epochs,
    try_in_mem_cache=False,
  )
  if isinstance(provider, seqio.Mixture):
    ds = provider.get_dataset(
      passthrough_features=list(AUTO_EXTRAS) + list(passthrough),
      log_mixing_proportions=False,
      **common,
    )
  else:
    ds = provider.get_dataset(**common)

  if pack and "task_id" in ds.element_spec:
    if isinstance(provider, seqio.Mixture) and len(provider.tasks) > 1:
      raise ValueError(
        "pack=True puts examples of different tasks in one row, so a "
        "per-example task_id is undefined; use pack=False for mixtures"
      )
    constant_task_id = int(next(iter(ds.take(1)))["task_id"])
  else:
    constant_task_id = None
  ds = convert_dataset(
    ds, lengths, pack=pack, passthrough=passthrough, constant_task_id=constant_task_id
  )
  return batch_dataset(ds, batch_size, drop_remainder)


@_without_autograph
def convert_dataset(
  ds: tf.data.Dataset,
  feature_lengths: Mapping[str, int],
  *,
  pack: bool = False,
  passthrough: Sequence[str] = (),
  constant_task_id: int | None = None,
) -> tf.data.Dataset:
  """Task examples (``inputs``/``targets`` tokens, ...) -> unbatched model features.

  Works on any tf.data dataset of seqio examples: trims/pads (or packs) the tokens with seqio's
  EncDecFeatureConverter, keeps ``task_id``/``image`` when present (``image`` becomes
  ``images``) and the ``passthrough`` features. With ``pack=True`` only a ``constant_task_id``
  (one task's id, added to every row) can go along.
  """
  element_spec = ds.element_spec
  missing = [k for k in passthrough if k not in element_spec]
  if missing:
    raise ValueError(
      f"passthrough feature(s) {missing} not in the examples; available: {sorted(element_spec)}"
    )
  extras = [k for k in AUTO_EXTRAS if k in element_spec]
  extras += [k for k in passthrough if k not in extras]
  lengths = dict(feature_lengths)
  if pack:
    blocked = [k for k in extras if k != "task_id"]
    if blocked:
      raise ValueError(f"pack=True cannot carry per-example features {blocked}; use pack=False")
    ds = ds.map(
      lambda ex: {k: ex[k] for k in TOKEN_TASK_FEATURES}, num_parallel_calls=tf.data.AUTOTUNE
    )
    ds = seqio.EncDecFeatureConverter(pack=True)(ds, lengths)
    if constant_task_id is not None:
      ds = ds.map(lambda ex: {**ex, "task_id": tf.constant(constant_task_id, tf.int32)})
  else:
    specs = {}
    for k in extras:
      specs[k], lengths[k] = _extra_spec(k, element_spec[k])
    ds = _EncDecWithExtras(pack=False, passthrough_features=specs)(ds, lengths)
  return ds.map(_finalize, num_parallel_calls=tf.data.AUTOTUNE)


def batch_dataset(
  ds: tf.data.Dataset, batch_size: int, drop_remainder: bool = False
) -> tf.data.Dataset:
  """Batches converted features, with tf.data's deterministic ordering enforced."""
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(2)


def _finalize(ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  out = {_RENAMES.get(k, k): v for k, v in ex.items()}
  out["decoder_loss_weights"] = tf.cast(out["decoder_loss_weights"], tf.float32)
  return out


def make_batches(
  task_or_mixture: Provider,
  split: str,
  feature_lengths: Mapping[str, int],
  batch_size: int,
  *,
  shuffle: bool = True,
  seed: int = 0,
  shard_index: int = 0,
  num_shards: int = 1,
  repeat: bool = False,
  pack: bool = False,
  drop_remainder: bool | None = None,
  passthrough: Sequence[str] = (),
) -> Iterator[dict[str, np.ndarray]]:
  """Yields model batches (dicts of numpy arrays) from a task, mixture or registered name.

  Args:
    task_or_mixture: a seqio Task or Mixture, or its registered name.
    split: e.g. "train", "validation".
    feature_lengths: {"inputs": L_in, "targets": L_tgt}; longer sequences are truncated (EOS kept).
    batch_size: examples (or packed rows) per batch, per shard.
    shuffle, seed: shuffling and its seed; the order is reproducible for a given seed and shard.
    shard_index, num_shards: this host's disjoint share of the examples.
    repeat: loop forever over epochs (reshuffled each epoch) instead of one pass.
    pack: pack several examples per row (adds segment ids and positions).
    drop_remainder: drop a last partial batch; default True when repeating, else False.
    passthrough: extra fixed-shape example features to keep, e.g. ("targets_pretokenized",).
  """
  ds = make_dataset(
    task_or_mixture,
    split,
    feature_lengths,
    batch_size,
    shuffle=shuffle,
    seed=seed,
    shard_index=shard_index,
    num_shards=num_shards,
    repeat=repeat,
    pack=pack,
    drop_remainder=drop_remainder,
    passthrough=passthrough,
  )
  return ds.as_numpy_iterator()


@_without_autograph
def iter_examples(
  task_or_mixture: Provider,
  split: str,
  keys: Sequence[str] | None = None,
  sequence_length: Mapping[str, int] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
  """Unshuffled single-shard examples (before conversion), in the order of unshuffled batches.

  For evaluation: the i-th example here is the i-th row of ``make_batches(..., shuffle=False)``,
  so per-example fields that cannot be batched (all caption references) can be lined up with
  predictions. Pass the batches' ``sequence_length`` for tasks whose preprocessing depends on it.
  """
  provider = _resolve(task_or_mixture)
  ds = provider.get_dataset(
    sequence_length=dict(sequence_length) if sequence_length else None,
    split=split,
    shuffle=False,
    num_epochs=1,
    try_in_mem_cache=False,
  )
  if keys is not None:
    missing = [k for k in keys if k not in ds.element_spec]
    if missing:
      raise ValueError(
        f"feature(s) {missing} not in {provider.name!r}; available: {sorted(ds.element_spec)}"
      )
    ds = ds.map(lambda ex: {k: ex[k] for k in keys})
  return ds.as_numpy_iterator()
