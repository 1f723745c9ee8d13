"""Classification and regression metrics for evaluation, in NumPy only (no TensorFlow, no scikit-learn).

The plain functions return raw values (accuracy and F1 in [0, 1], correlations in [-1, 1]); they agree
with scikit-learn / SciPy to rounding (the tests check 1e-9). ``percent`` turns a metrics dict into the
0-100 scale that T5 and the AdaLink paper report, which is what the task ``metric_fns`` return.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np


def _as_arrays(targets: Sequence, predictions: Sequence) -> tuple[np.ndarray, np.ndarray]:
  t = np.asarray(list(targets))
  p = np.asarray(list(predictions))
  if t.shape != p.shape or t.ndim != 1:
    raise ValueError(
      f"targets and predictions must be equal-length 1-D sequences, "
      f"got shapes {t.shape} and {p.shape}"
    )
  if t.size == 0:
    raise ValueError("metrics need at least one example")
  return t, p


def accuracy(targets: Sequence, predictions: Sequence) -> float:
  """Fraction of predictions equal to their target."""
  t, p = _as_arrays(targets, predictions)
  return float(np.mean(t == p))


def f1_binary(targets: Sequence, predictions: Sequence, positive=1) -> float:
  """F1 of the ``positive`` class; any other value (including an invalid -1) counts as negative.

  With no true and no predicted positives precision and recall are undefined; like scikit-learn's
  default (``zero_division``) the score is then 0.
  """
  t, p = _as_arrays(targets, predictions)
  t_pos = t == positive
  p_pos = p == positive
  tp = int(np.sum(t_pos & p_pos))
  denom = int(np.sum(t_pos)) + int(np.sum(p_pos))
  return 0.0 if denom == 0 else 2.0 * tp / denom


def matthews_corrcoef(targets: Sequence, predictions: Sequence) -> float:
  """Matthews correlation, multi-class form (Gorodkin's R_K), as scikit-learn computes it.

  Predictions outside the target classes (e.g. -1 for an unparsable answer) form their own class,
  which is what scikit-learn does with the same inputs. A degenerate confusion matrix gives 0.
  """
  t, p = _as_arrays(targets, predictions)
  classes, codes = np.unique(np.concatenate([t, p]), return_inverse=True)
  k = len(classes)
  conf = np.zeros((k, k), dtype=np.float64)
  np.add.at(conf, (codes[: len(t)], codes[len(t) :]), 1.0)
  t_sum = conf.sum(axis=1)
  p_sum = conf.sum(axis=0)
  n = conf.sum()
  correct = np.trace(conf)
  cov_tp = correct * n - np.dot(t_sum, p_sum)
  cov_pp = n * n - np.dot(p_sum, p_sum)
  cov_tt = n * n - np.dot(t_sum, t_sum)
  if cov_pp * cov_tt == 0:
    return 0.0
  return float(cov_tp / math.sqrt(cov_tt * cov_pp))


def pearson_corrcoef(x: Sequence[float], y: Sequence[float]) -> float:
  """Pearson's r; NaN when either side is constant (as SciPy returns)."""
  a, b = _as_arrays(x, y)
  a = a.astype(np.float64)
  b = b.astype(np.float64)
  if a.size < 2:
    raise ValueError("Pearson correlation needs at least two examples")
  da = a - a.mean()
  db = b - b.mean()
  na = np.linalg.norm(da)
  nb = np.linalg.norm(db)
  if na == 0 or nb == 0:
    return float("nan")
  r = float(np.dot(da / na, db / nb))
  return max(-1.0, min(1.0, r))  # rounding can step just outside [-1, 1]


def average_ranks(x: Sequence[float]) -> np.ndarray:
  """1-based ranks with ties given the mean of the ranks they span."""
  a = np.asarray(list(x), dtype=np.float64)
  order = np.argsort(a, kind="mergesort")
  sorted_a = a[order]
  # Boundaries of runs of equal values in sorted order.
  starts = np.concatenate([[True], sorted_a[1:] != sorted_a[:-1]])
  run_id = np.cumsum(starts) - 1
  run_start = np.flatnonzero(starts)
  run_end = np.concatenate([run_start[1:], [len(a)]])
  mean_rank = (run_start + run_end + 1) / 2.0  # mean of 1-based ranks start+1 .. end
  ranks = np.empty(len(a), dtype=np.float64)
  ranks[order] = mean_rank[run_id]
  return ranks


def spearman_corrcoef(x: Sequence[float], y: Sequence[float]) -> float:
  """Spearman's rho: Pearson's r of the average ranks."""
  a, b = _as_arrays(x, y)
  return pearson_corrcoef(average_ranks(a), average_ranks(b))


def percent(metrics: Mapping[str, float]) -> dict[str, float]:
  """Scales every value by 100 (the convention of T5's GLUE metrics and the paper's tables)."""
  return {k: 100.0 * float(v) for k, v in metrics.items()}
