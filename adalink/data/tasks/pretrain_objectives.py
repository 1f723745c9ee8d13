"""The pretraining objectives as plain NumPy: T5's span corruption (the noise mask, the corruption
and its inverse, the lengths that make packed rows fill exactly) and the prefix-LM split point.

Span corruption: ``noise_span_mask`` picks round(L * noise_density) noise tokens in
round(noise / mean_noise_span_length) spans; ``corrupt`` replaces each noise span in the inputs by
one sentinel and writes the targets as sentinel + span for each span. Sentinels count down from
``sentinel_start``, which the task sets to the top of the vocabulary: span k gets
``vocabulary.vocab_size - 1 - k`` (``<extra_id_k>`` for a SentencePiece vocabulary with extra
ids). ``span_corruption_lengths`` gives the raw chunk length for which every full chunk gives
exactly ``inputs_length`` input tokens and ``targets_length`` target tokens with EOS.

Prefix LM: ``prefix_lm_split_point`` splits a chunk at a uniformly random point; the inputs are
the prefix and the targets the rest.

No TensorFlow or seqio here: ``pretrain_preprocessors`` runs these functions inside the tf.data
pipeline through ``tf.numpy_function``, so the code the tests check is the code that produces the
data.
"""

from __future__ import annotations

import numpy as np

# Chunks shorter than this cannot be corrupted or split (both need a token on each side).
MIN_CHUNK_LENGTH = 2


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
