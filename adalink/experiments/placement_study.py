"""The adapter placement study on the T5 encoder (arXiv 2410.15858): which single placement learns
best, does gradient rank at initialisation predict it, and where does AdaLink's node-0 placement
stand. `run_study(config, out)` runs it; configs/placement.py documents every field.

Stages:
  1. gradient rank at initialisation of every edge (i, j) over the grid's nodes, from one forward
     and backward pass per batch (`adalink.peft.placement_scores.score_edges`);
  2. single-edge adapters for a subset of the edges (random, top-k by rank, or all), each trained
     for the same steps on the same batches from the same adapter init, then evaluated on the
     validation split; a few again from other inits, for the metric's seed-to-seed noise;
  3. Spearman(rank, metric), and the heatmaps and scatter plot (`placement_report`);
  4. random search over sets of k edges, against parallel adapters everywhere, AdaLink of rank
     k * r (equal parameters) and the top-k-by-rank set.

This module runs the stages and writes placement.json. `placement_setup` validates the config and
loads the data; `placement_runner` trains and evaluates a placement (placements of one shape share
a compiled step); `placement_report` computes the correlations and draws the figures.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Dict, List

import jax
import numpy as np

from adalink.experiments import placement_report as report
from adalink.experiments.placement_runner import Runner
from adalink.experiments.placement_setup import check_config, load_data
from adalink.models import t5
from adalink.peft import placement_graph as graph
from adalink.peft import placement_scores
from adalink.train import step as step_lib

PRIMARY = report.PRIMARY  # the metric placements are ranked by (lower is better)


# ----------------------------------------------------------------------------- the stages


def _by_rank(grid, scores, fro):
  return sorted(grid, key=lambda e: (-scores.rank(e), -fro[e.src, e.dst]))


def choose_edges(
  c, grid, num_edges: int, scores, fro, rs: np.random.RandomState
) -> List[graph.Edge]:
  """The single edges to train (config.train.selection); AdaLink's (0, 0) is always among
  them, to see where it stands."""
  if c.train.selection == "all":
    chosen = list(grid)
  elif c.train.selection == "topk":
    chosen = _by_rank(grid, scores, fro)[:num_edges]
  else:
    chosen = [grid[i] for i in sorted(rs.choice(len(grid), num_edges, replace=False))]
  adalink_edge = graph.Edge(0, 0, "sequential")
  if adalink_edge in grid and adalink_edge not in chosen:
    chosen.insert(0, adalink_edge)
  return chosen


def train_single_edges(c, runner: Runner, chosen, scores, fro, log) -> List[Dict[str, Any]]:
  singles = []
  for idx, e in enumerate(chosen):
    res, _ = runner.run_edges([e])
    res.update(
      edge=[e.src, e.dst], kind=e.kind, rank=scores.rank(e), grad_fro_norm=float(fro[e.src, e.dst])
    )
    singles.append(res)
    log(
      f"[2] {idx + 1:2d}/{len(chosen)} edge ({e.src},{e.dst}) {e.kind:10s} rank "
      f"{res['rank']:2d}  val_loss {res['val_loss']:.4f}  class_acc {res['class_acc']:.3f}  "
      f"exact {res['exact_match']:.3f}  ({res['seconds']:.1f}s)"
    )
  return singles


def seed_noise(c, runner: Runner, chosen, singles, log) -> Dict[str, Any]:
  """Seed-to-seed noise of the metric: the first few chosen edges again from other adapter
  inits; -> {"runs": [...], "pooled_std": ...}."""
  noise = []
  for e in chosen[: int(c.train.noise_edges)]:
    vals = [next(s for s in singles if s["edge"] == [e.src, e.dst])[PRIMARY]]
    for extra in range(1, int(c.train.noise_seeds) + 1):
      vals.append(runner.run_edges([e], init_seed=int(c.seed) + 100 + extra)[0][PRIMARY])
    noise.append({"edge": [e.src, e.dst], PRIMARY: vals, "std": float(np.std(vals, ddof=1))})
  pooled = float(np.sqrt(np.mean([n["std"] ** 2 for n in noise]))) if noise else None
  if noise:
    log(
      f"[2] seed-to-seed std of {PRIMARY} (adapter init, {1 + int(c.train.noise_seeds)} "
      f"seeds, edges {[tuple(n['edge']) for n in noise]}): {pooled:.4f}; spread over "
      f"single edges: {min(s[PRIMARY] for s in singles):.4f} .. "
      f"{max(s[PRIMARY] for s in singles):.4f}"
    )
  return {"runs": noise, "pooled_std": pooled}


def random_search(c, runner: Runner, grid, scores, fro, rs, log) -> Dict[str, Any]:
  """Random k-edge sets, and the references: the top-k edges by rank, parallel adapters
  everywhere, and AdaLink with the k-edge set's parameter count."""
  k = int(c.search.k)
  trials = []
  for t in range(int(c.search.num_trials)):
    picked = [grid[i] for i in sorted(rs.choice(len(grid), k, replace=False))]
    res, picked = runner.run_edges(picked)
    res.update(edges=[[e.src, e.dst, e.kind] for e in picked])
    trials.append(res)
    log(
      f"[4] trial {t + 1}/{c.search.num_trials} {[(e.src, e.dst) for e in picked]} val_loss "
      f"{res['val_loss']:.4f} class_acc {res['class_acc']:.3f} ({res['seconds']:.1f}s)"
    )
  topk_res, top = runner.run_edges(_by_rank(grid, scores, fro)[:k], routed=False)
  topk_res.update(edges=[[e.src, e.dst, e.kind] for e in top])
  every_res, every = runner.run_edges(graph.everywhere_edges(runner.cfg.num_encoder_layers), False)
  every_res.update(edges=[[e.src, e.dst, e.kind] for e in every])
  adalink_rank = k * int(c.method.rank)
  adalink_res = runner.run_method(
    {
      "name": "adalink",
      "rank": adalink_rank,
      "activation": c.method.activation,
      "dropout_rate": float(c.method.dropout_rate),
    }
  )
  adalink_res.update(edges=[[0, 0, "sequential"]], rank=adalink_rank)
  return {
    "k": k,
    "trials": trials,
    "best": min(trials, key=lambda r: r[PRIMARY]),
    "topk_by_rank": topk_res,
    "everywhere": every_res,
    "adalink_equal_budget": adalink_res,
  }


def correlations(singles, ranks_by_rtol) -> Dict[str, Any]:
  neg_loss = [-s[PRIMARY] for s in singles]
  ranks = [s["rank"] for s in singles]
  return {
    "rank_vs_neg_val_loss": report.spearman(ranks, neg_loss),
    "rank_vs_class_acc": report.spearman(ranks, [s["class_acc"] for s in singles]),
    "grad_fro_norm_vs_neg_val_loss": report.spearman(
      [s["grad_fro_norm"] for s in singles], neg_loss
    ),
    "rank_vs_neg_val_loss_by_rtol": {
      k: report.spearman([int(r[s["edge"][0], s["edge"][1]]) for s in singles], neg_loss)
      for k, r in ranks_by_rtol.items()
    },
  }


# ----------------------------------------------------------------------------- the study


def _print(text: str) -> None:
  print(text, flush=True)  # progress of a long CPU run, shown as it happens


def run_study(c, out: str, log: Callable[[str], None] = _print) -> Dict[str, Any]:
  """Runs the study of config `c` (configs/placement.py), writing placement.json and the figures
  into `out`; -> the placement.json record. Every config error is raised before any work."""
  t_start = time.time()
  setup = check_config(c)
  cfg, grid = setup.model_config, setup.grid
  os.makedirs(out, exist_ok=True)
  n = graph.num_nodes(cfg.num_encoder_layers)
  nodes = sorted({e.src for e in grid})
  log(
    f"model: tiny T5, {cfg.num_encoder_layers} encoder layers -> {n} nodes, d_model "
    f"{cfg.d_model}; grid nodes {nodes} -> {len(grid)} candidate edges; task {c.data.task}"
  )
  data = load_data(c, cfg, setup.task_spec.label_names)
  base_params = t5.init_params(cfg, jax.random.PRNGKey(int(c.model.init_seed)))
  log(
    f"data: {len(data.train)} train batches of {c.data.batch_size}, {data.num_val} validation "
    f"examples ({time.time() - t_start:.0f}s)"
  )

  # (1) gradient rank of every grid edge
  t0 = time.time()
  scores = placement_scores.score_edges(
    cfg,
    base_params,
    iter(data.train),
    int(c.score.num_batches),
    float(c.score.rtol),
    grid,
    loss_fn=step_lib.cross_entropy,  # the training loss: rank what training will follow
  )
  t_score = time.time() - t0
  fro = np.linalg.norm(scores.products, axis=(-2, -1))
  ranks_by_rtol = {
    f"{rtol:g}": placement_scores.ranks_from_products(scores.products, float(rtol))[0]
    for rtol in c.score.rtol_sweep
  }
  log(
    f"[1] scored {len(grid)} edges over {scores.num_batches} batches ({scores.num_tokens} "
    f"tokens) in {t_score:.1f}s; rank at rtol={scores.rtol:g}: min "
    f"{min(scores.rank(e) for e in grid)}, max {max(scores.rank(e) for e in grid)} "
    f"(of {cfg.d_model})"
  )

  # (2) single-edge adapters, and the metric's seed-to-seed noise
  t0 = time.time()
  rs = np.random.RandomState(int(c.seed))
  chosen = choose_edges(c, grid, setup.num_edges, scores, fro, rs)
  runner = Runner(c, cfg, base_params, data)
  singles = train_single_edges(c, runner, chosen, scores, fro, log)
  noise = seed_noise(c, runner, chosen, singles, log)
  by_metric = sorted(singles, key=lambda s: s[PRIMARY])
  single_00 = next((s for s in singles if s["edge"] == [0, 0]), None)
  if single_00 is not None:
    log(
      f"[2] AdaLink's edge (0,0): {PRIMARY} {single_00[PRIMARY]:.4f}, "
      f"{by_metric.index(single_00) + 1} of {len(singles)} single edges; best "
      f"{tuple(by_metric[0]['edge'])} {by_metric[0][PRIMARY]:.4f}"
    )
  t_single = time.time() - t0

  # (3) correlation and figures
  corr = correlations(singles, ranks_by_rtol)
  rank_m = np.full((n, n), np.nan)
  for e in grid:
    rank_m[e.src, e.dst] = scores.rank(e)
  rho_text = report.write_figures(c, out, cfg, scores, rank_m, singles, corr)
  log(f"[3] {rho_text}")
  log(report.correlation_lines(corr))

  # (4) random search with a budget of k adapters, and the references
  t0 = time.time()
  search = random_search(c, runner, grid, scores, fro, rs, log)
  search["adalink_single_edge"] = single_00
  t_search = time.time() - t0
  log(report.search_table(c, search, single_00, data.num_val))

  result = {
    "config": json.loads(c.to_json()),
    "model": {
      "num_encoder_layers": cfg.num_encoder_layers,
      "d_model": cfg.d_model,
      "num_nodes": n,
      "node_labels": [graph.node_label(i) for i in range(n)],
      "init": "random (seed config.model.init_seed)",
    },
    "metric": report.metric_record(data.num_val),
    "score": report.score_record(scores, grid, nodes, rank_m, ranks_by_rtol, fro),
    "single_edges": {
      "selection": c.train.selection,
      "results": singles,
      "order_by_" + PRIMARY: [s["edge"] for s in by_metric],
      "adalink_place": (by_metric.index(single_00) + 1 if single_00 is not None else None),
      "seed_noise": noise,
    },
    "spearman": corr,
    "search": search,
    "timing_seconds": {
      "score": round(t_score, 1),
      "single_edges": round(t_single, 1),
      "search": round(t_search, 1),
      "total": round(time.time() - t_start, 1),
    },
    "compiled_step_variants": runner.compiles,
  }
  path = os.path.join(out, "placement.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=1, allow_nan=False)
  log(
    f"\nwrote {path}, rank_heatmap.png, metric_heatmap.png, rank_vs_metric.png in {out}; "
    f"{runner.compiles} compiled step variants; total {time.time() - t_start:.0f}s"
  )
  return result
