"""The placement study (adalink.experiments.placement_study) end to end on the tiny SST-2 fixture:
every stage runs, placement.json holds what the run returned, AdaLink's edge is always trained,
edge sets of one shape share a compiled step, the equal-budget AdaLink matches a k-edge set's
parameter count; bad configs are refused before anything is written; a diverged placement stops
the study."""

import json
import math

import numpy as np
import pytest

from adalink.experiments import placement_report, placement_runner, placement_study
from adalink.peft import placement_graph as graph
from configs import placement as placement_configs


def _config(**train):
  c = placement_configs.get_config("smoke")
  c.train.update(num_edges=2, num_steps=3, noise_edges=1, noise_seeds=1, **train)
  c.score.num_batches = 2
  c.search.update(k=2, num_trials=1)
  return c


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  out = tmp_path_factory.mktemp("placement")
  lines = []
  result = placement_study.run_study(_config(), str(out), log=lines.append)
  return out, result, "\n".join(lines)


def test_study_writes_its_record_and_figures(study):
  out, result, text = study
  assert json.loads((out / "placement.json").read_text()) == json.loads(json.dumps(result))
  for name in ("rank_heatmap.png", "metric_heatmap.png", "rank_vs_metric.png"):
    assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
  n = result["model"]["num_nodes"]
  assert n == graph.num_nodes(2) == 5
  ranks = np.asarray(result["score"]["ranks"], float)
  assert ranks.shape == (n, n) and np.all((ranks >= 1) & (ranks <= result["model"]["d_model"]))
  assert "[3] Spearman(rank, -val loss)" in text and "random placement search" in text


def test_single_edges_include_adalinks_and_score_every_metric(study):
  _, result, _ = study
  singles = result["single_edges"]["results"]
  assert singles[0]["edge"] == [0, 0]  # AdaLink's placement, added to the 2 random edges
  assert len(singles) == 3
  for s in singles:
    assert math.isfinite(s["val_loss"]) and 0 <= s["class_acc"] <= 1
    assert s["rank"] == int(result["score"]["ranks"][s["edge"][0]][s["edge"][1]])
  order = result["single_edges"]["order_by_val_loss"]
  assert sorted(map(tuple, order)) == sorted(tuple(s["edge"]) for s in singles)
  place = result["single_edges"]["adalink_place"]
  assert order[place - 1] == [0, 0]
  noise = result["single_edges"]["seed_noise"]
  assert len(noise["runs"]) == 1 and len(noise["runs"][0]["val_loss"]) == 2


def test_search_references_and_compile_sharing(study):
  _, result, _ = study
  search = result["search"]
  assert len(search["trials"]) == 1 and search["best"] == search["trials"][0]
  # AdaLink of rank k * r has the parameters of k edges of rank r.
  assert search["adalink_equal_budget"]["params"] == search["best"]["params"]
  assert search["adalink_equal_budget"]["rank"] == 2 * 4
  assert len(search["everywhere"]["edges"]) == len(graph.everywhere_edges(2))
  runs = len(result["single_edges"]["results"]) + 1 + 1 + 3  # singles, noise, trial, references
  assert result["compiled_step_variants"] < runs


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("train.selection", "best", "config.train.selection must be one of"),
    ("search.k", 99, "config.search.k=99 exceeds the 25 edges of the grid"),
    ("data.task", "stsb", "config.data.task='stsb' is a regression task"),
    ("method.name", "adalink", "config.method.name must be 'placement'"),
    ("train.num_steps", 0, "config.train.num_steps must be a positive integer, got 0"),
    ("grid.nodes", (0, 7), "config.grid.nodes: node 7 is out of range"),
  ],
)
def test_bad_configs_are_refused_before_anything_is_written(tmp_path, field, value, message):
  c = _config()
  section, key = field.split(".")
  c[section][key] = value
  with pytest.raises(ValueError, match=message):
    placement_study.run_study(c, str(tmp_path / "out"), log=lambda _: None)
  assert not (tmp_path / "out").exists()


def test_non_finite_loss_stops_the_study():
  placement_runner.check_finite_losses(np.array([2.0, 1.5]))
  with pytest.raises(FloatingPointError, match="non-finite training loss at step 3.*peak_lr"):
    placement_runner.check_finite_losses(np.array([2.0, 1.5, np.nan, 1.0]))


def test_spearman_is_undefined_rather_than_wrong():
  assert placement_report.spearman([1, 2], [3, 4])["note"] == "fewer than 3 points"
  assert placement_report.spearman([1, 1, 1], [1, 2, 3])["rho"] is None
  assert placement_report.spearman([1, 2, 3, 4], [2, 4, 6, 9])["rho"] == pytest.approx(1.0)
  assert placement_report.matrix_json([[1.0, float("nan")]]) == [[1.0, None]]
