"""CIDEr-D, as computed by the COCO caption evaluation code (``pycocoevalcap`` 1.2, ``Cider``).

The COCO code's "CIDEr" is in fact CIDEr-D (Vedantam et al. 2015, section 5): for n = 1..4,

- each sentence is a vector of n-gram weights ``tf(g) * (log(N) - log(max(1, df(g))))``, with raw
  counts as tf, N the number of images and df(g) the number of images whose *references* contain g;
- the similarity to one reference is ``sum_g min(w_cand(g), w_ref(g)) * w_ref(g)`` (clipping) divided
  by the two vector norms, times the Gaussian length penalty ``exp(-(l_cand - l_ref)^2 / (2 sigma^2))``
  with sigma = 6;
- an image's score is 10 x the mean over n of the mean over its references; the corpus score is the
  mean over images.

Matched detail: the "length" in the penalty is what the COCO code computes, the number of bigram
tokens (words - 1 for a non-empty sentence, 0 for an empty one). Stemming is not applied (neither
does the COCO code). Sentences are split on whitespace; pass ``tokenize=True`` to run the PTB
tokenisation the COCO pipeline applies first (``ptb_tokenizer``). Pure Python: no TensorFlow.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Hashable, Mapping, Sequence

from adalink.data.metrics import ptb_tokenizer


def ngram_counts(sentence: str, n: int = 4) -> Counter:
  """Counts of every k-gram (k = 1..n) of a whitespace-tokenised sentence, keyed by word tuples."""
  words = sentence.split()
  counts: Counter = Counter()
  for k in range(1, n + 1):
    for i in range(len(words) - k + 1):
      counts[tuple(words[i : i + k])] += 1
  return counts


class _Vector:
  """An n-gram count table turned into per-order tf-idf weights, norms and a length."""

  __slots__ = ("weights", "norms", "length")

  def __init__(self, counts: Counter, n: int, log_num_images: float, doc_freq: Mapping):
    self.weights: list[dict] = [{} for _ in range(n)]
    squares = [0.0] * n
    for gram, tf in counts.items():
      w = float(tf) * (log_num_images - math.log(max(1.0, doc_freq.get(gram, 0.0))))
      self.weights[len(gram) - 1][gram] = w
      squares[len(gram) - 1] += w * w
    self.norms = [math.sqrt(s) for s in squares]
    # Bigram tokens, deliberately: this is the length the COCO code's penalty uses.
    self.length = sum(tf for gram, tf in counts.items() if len(gram) == 2)


def _similarity(cand: _Vector, ref: _Vector, n: int, sigma: float) -> list[float]:
  delta = float(cand.length - ref.length)
  penalty = math.exp(-(delta * delta) / (2.0 * sigma * sigma))
  out = []
  for k in range(n):
    ref_w = ref.weights[k]
    dot = 0.0
    for gram, w in cand.weights[k].items():
      r = ref_w.get(gram, 0.0)
      dot += min(w, r) * r
    if cand.norms[k] != 0.0 and ref.norms[k] != 0.0:
      dot /= cand.norms[k] * ref.norms[k]
    out.append(dot * penalty)
  return out


def cider_d(
  candidates: Mapping[Hashable, str],
  references: Mapping[Hashable, Sequence[str]],
  n: int = 4,
  sigma: float = 6.0,
  tokenize: bool = False,
) -> tuple[float, dict[Hashable, float]]:
  """Corpus CIDEr-D and per-image scores.

  Args:
    candidates: image key -> the candidate caption.
    references: image key -> its reference captions (at least one each); same keys.
    n: highest n-gram order; sigma: width of the length penalty.
    tokenize: PTB-tokenise (and lower-case, strip punctuation) both sides first, as the COCO
      evaluation does; with False the text is used as given, split on whitespace.

  Returns:
    (corpus score, {key: image score}) on the COCO code's scale (x10; a perfect match of a
    distinctive caption scores about 10).
  """
  if set(candidates) != set(references):
    raise ValueError("candidates and references must have the same image keys")
  if not candidates:
    raise ValueError("CIDEr-D needs at least one image")
  keys = list(candidates)
  for k in keys:
    if isinstance(references[k], str) or len(references[k]) == 0:
      raise ValueError(f"image {k!r}: references must be a non-empty list of strings")
  if tokenize:
    refs = ptb_tokenizer.tokenize_captions({k: list(references[k]) for k in keys})
    cands = {
      k: v[0]
      for k, v in ptb_tokenizer.tokenize_captions({k: [candidates[k]] for k in keys}).items()
    }
  else:
    refs = {k: list(references[k]) for k in keys}
    cands = {k: candidates[k] for k in keys}

  ref_counts = {k: [ngram_counts(r, n) for r in refs[k]] for k in keys}
  doc_freq: Counter = Counter()
  for k in keys:
    doc_freq.update(set().union(*ref_counts[k]))
  log_num_images = math.log(float(len(keys)))

  scores = {}
  for k in keys:
    cand = _Vector(ngram_counts(cands[k], n), n, log_num_images, doc_freq)
    totals = [0.0] * n
    for counts in ref_counts[k]:
      sims = _similarity(cand, _Vector(counts, n, log_num_images, doc_freq), n, sigma)
      totals = [t + s for t, s in zip(totals, sims)]
    scores[k] = 10.0 * (sum(totals) / n) / len(ref_counts[k])
  return sum(scores.values()) / len(scores), scores
