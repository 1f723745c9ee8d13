"""Metrics against reference implementations on random predictions (scikit-learn, SciPy): <= 1e-9."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from adalink.data.tasks import glue_spec
from adalink.data.metrics import classification as metrics

TOL = 1e-9
SIZES = (2, 3, 7, 50, 408, 1043, 5000)


def _random_classification(rng, n, k, invalid_rate):
  t = rng.integers(0, k, n)
  p = rng.integers(0, k, n)
  p[rng.random(n) < invalid_rate] = -1  # unparsable predictions
  return t, p


# scikit-learn warns when a random draw happens to hold a single class; that case is wanted here.
@pytest.mark.filterwarnings("ignore:A single label was found")
def test_accuracy_f1_mcc_match_scikit_learn():
  rng = np.random.default_rng(0)
  worst = {"accuracy": 0.0, "f1": 0.0, "mcc": 0.0}
  for trial in range(60):
    n = SIZES[trial % len(SIZES)]
    k = 2 if trial % 3 else 3
    t, p = _random_classification(rng, n, k, invalid_rate=[0.0, 0.1][trial % 2])
    diffs = {
      "accuracy": abs(metrics.accuracy(t, p) - skm.accuracy_score(t, p)),
      # F1 of class 1, every other value (0, 2, -1) being "not 1".
      "f1": abs(
        metrics.f1_binary(t, p) - skm.f1_score(t, p, labels=[1], average="micro", zero_division=0)
      ),
      "mcc": abs(metrics.matthews_corrcoef(t, p) - skm.matthews_corrcoef(t, p)),
    }
    for key, d in diffs.items():
      worst[key] = max(worst[key], d)
  print(f"\nmax |ours - scikit-learn| over 60 random trials: {worst}")
  assert max(worst.values()) <= TOL


def test_binary_f1_equals_sklearn_default_binary_average():
  rng = np.random.default_rng(1)
  t, p = rng.integers(0, 2, 999), rng.integers(0, 2, 999)
  assert abs(metrics.f1_binary(t, p) - skm.f1_score(t, p)) <= TOL


def test_degenerate_cases_follow_the_references():
  assert (
    metrics.matthews_corrcoef([1, 1, 0], [1, 1, 1])
    == skm.matthews_corrcoef([1, 1, 0], [1, 1, 1])
    == 0.0
  )
  assert metrics.f1_binary([0, 0], [0, 0]) == skm.f1_score([0, 0], [0, 0], zero_division=0)
  assert np.isnan(metrics.pearson_corrcoef([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]))
  with pytest.raises(ValueError):
    metrics.accuracy([], [])
  with pytest.raises(ValueError):
    metrics.accuracy([1, 2], [1])


def test_pearson_and_spearman_match_scipy():
  rng = np.random.default_rng(2)
  worst_p = worst_s = 0.0
  for trial in range(60):
    n = max(3, SIZES[trial % len(SIZES)])
    x = rng.uniform(0, 5, n)
    y = np.clip(x + rng.normal(0, 1.5, n), 0, 5)
    if trial % 2:  # STS-B style: targets and predictions on the 0.2 grid, so many ties
      x, y = np.round(x * 5) / 5, np.round(y * 5) / 5
    worst_p = max(worst_p, abs(metrics.pearson_corrcoef(x, y) - stats.pearsonr(x, y)[0]))
    worst_s = max(worst_s, abs(metrics.spearman_corrcoef(x, y) - stats.spearmanr(x, y)[0]))
  print(f"\nmax |ours - SciPy|: pearson {worst_p:.3g}, spearman {worst_s:.3g}")
  assert worst_p <= TOL and worst_s <= TOL


def test_average_ranks_match_scipy_rankdata():
  rng = np.random.default_rng(3)
  x = rng.integers(0, 10, 200).astype(float)
  np.testing.assert_array_equal(metrics.average_ranks(x), stats.rankdata(x))


def test_glue_metric_fns_report_percent_of_the_references():
  rng = np.random.default_rng(4)
  t, p = _random_classification(rng, 300, 2, 0.05)
  mrpc = {}
  for fn in glue_spec.get_spec("mrpc").metric_fns:
    mrpc.update(fn(list(t), list(p)))
  assert mrpc["accuracy"] == pytest.approx(100 * skm.accuracy_score(t, p), abs=1e-7)
  assert mrpc["f1"] == pytest.approx(
    100 * skm.f1_score(t, p, labels=[1], average="micro"), abs=1e-7
  )
  (cola,) = [fn(list(t), list(p)) for fn in glue_spec.get_spec("cola").metric_fns]
  assert cola["matthews_corrcoef"] == pytest.approx(100 * skm.matthews_corrcoef(t, p), abs=1e-7)
  x, y = rng.uniform(0, 5, 100), rng.uniform(0, 5, 100)
  stsb = {}
  for fn in glue_spec.get_spec("stsb").metric_fns:
    stsb.update(fn(list(x), list(y)))
  assert stsb == pytest.approx(
    {
      "pearson_corrcoef": 100 * stats.pearsonr(x, y)[0],
      "spearman_corrcoef": 100 * stats.spearmanr(x, y)[0],
    }
  )
  assert [m for s in glue_spec.GLUE_TASKS for m in glue_spec.get_spec(s).metric_names] == [
    "matthews_corrcoef",
    "accuracy",
    "accuracy",
    "f1",
    "accuracy",
    "f1",
    "pearson_corrcoef",
    "spearman_corrcoef",
    "accuracy",
    "accuracy",
    "accuracy",
  ]


def test_postprocess_maps_text_to_labels():
  sst2, mnli, stsb = (glue_spec.get_spec(n) for n in ("sst2", "mnli", "stsb"))
  assert [sst2.postprocess_fn(s) for s in ("positive", "negative", "Positive", "")] == [
    1,
    0,
    -1,
    -1,
  ]
  assert [mnli.postprocess_fn(s) for s in ("entailment", "neutral", "contradiction")] == [0, 1, 2]
  assert stsb.postprocess_fn("3.8") == pytest.approx(3.8)
  assert stsb.postprocess_fn("nan") == stsb.postprocess_fn("five") == glue_spec.STSB_FALLBACK
  # Targets use the example's own label (for STS-B the unrounded gold score).
  assert stsb.postprocess_fn(
    b"3.8", example={"label": np.float32(3.75)}, is_target=True
  ) == pytest.approx(3.75)
  assert sst2.postprocess_fn(b"positive", is_target=True) == 1


def test_stsb_target_rounding_is_t5s():
  # round(5 * score) / 5 in float32 with ties to even: 2.5 -> 12.5 -> 12 -> "2.4".
  spec = glue_spec.get_spec("stsb")
  assert [spec.target_text(s) for s in (0.0, 4.75, 5.0, 2.5, 1.1, 3.7)] == [
    "0.0",
    "4.8",
    "5.0",
    "2.4",
    "1.2",
    "3.6",
  ]
  assert glue_spec.get_spec("rte").target_text(-1) == "<unk>"
