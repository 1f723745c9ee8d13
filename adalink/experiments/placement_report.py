"""What the placement study reports: Spearman correlations, the rank and metric heatmaps, the
rank-vs-metric scatter, the search table and the JSON records of placement.json."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from adalink.peft import placement_graph as graph

PRIMARY = "val_loss"
KIND_COLORS = {
  "sequential": "tab:blue",
  "parallel": "tab:orange",
  "long_range": "tab:green",
  "recurrent": "tab:red",
}


def spearman(x, y) -> Dict[str, Any]:
  """Spearman's rho and its p-value; None (with a note) where it is undefined."""
  from scipy import stats

  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) < 3:
    return {"rho": None, "p": None, "n": int(len(x)), "note": "fewer than 3 points"}
  if np.all(x == x[0]) or np.all(y == y[0]):
    return {"rho": None, "p": None, "n": int(len(x)), "note": "constant input: undefined"}
  res = stats.spearmanr(x, y)
  return {"rho": float(res.statistic), "p": float(res.pvalue), "n": int(len(x))}


def fmt_rho(s: Dict[str, Any]) -> str:
  return (
    "undefined (" + s["note"] + ")"
    if s["rho"] is None
    else f"{s['rho']:+.3f} (p={s['p']:.3g}, n={s['n']})"
  )


def matrix_json(m) -> List[List[Any]]:
  """A float matrix as nested lists with None where a cell is NaN (strict JSON)."""
  return [[None if not np.isfinite(v) else float(v) for v in row] for row in np.asarray(m, float)]


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")  # files only; no display on the machines this runs on
  import matplotlib.pyplot as plt

  return matplotlib, plt


def heatmap(path, matrix, title, cbar, fmt, cmap, highlight=None):
  """An n x n matrix (rows = source node, columns = target node); NaN cells (not scored / not
  trained) are grey."""
  matplotlib, plt = _pyplot()
  n = matrix.shape[0]
  fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.6 + 0.7 * n))
  cm = matplotlib.colormaps[cmap].with_extremes(bad="#dddddd")
  im = ax.imshow(np.ma.masked_invalid(matrix), cmap=cm)
  labels = [f"{k}\n{graph.node_label(k)}" for k in range(n)]
  ax.set_xticks(range(n), labels, fontsize=7)
  ax.set_yticks(range(n), [label.replace("\n", " ") for label in labels], fontsize=7)
  ax.set_xlabel("target node j (adapter output added here)")
  ax.set_ylabel("source node i (adapter input)")
  finite = matrix[np.isfinite(matrix)]
  mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
  for i in range(n):
    for j in range(n):
      if np.isfinite(matrix[i, j]):
        v = matrix[i, j]
        light = (v < mid) == (cmap.endswith("_r"))
        ax.text(
          j,
          i,
          fmt.format(v),
          ha="center",
          va="center",
          fontsize=7,
          color="black" if light else "white",
        )
  if highlight is not None:
    i, j = highlight
    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
  ax.set_title(title, fontsize=9)
  fig.colorbar(im, ax=ax, label=cbar, shrink=0.8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def scatter(path, singles, rho_text, rtol):
  _, plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.2))
  for kind, color in KIND_COLORS.items():
    pts = [s for s in singles if s["kind"] == kind]
    if pts:
      ax.scatter([s["rank"] for s in pts], [s[PRIMARY] for s in pts], c=color, label=kind, s=28)
  for s in singles:
    ax.annotate(
      f"{s['edge'][0]},{s['edge'][1]}",
      (s["rank"], s[PRIMARY]),
      fontsize=6,
      xytext=(3, 2),
      textcoords="offset points",
    )
  ax.set_xlabel(f"gradient rank at init (rtol={rtol:g})")
  ax.set_ylabel("validation label loss (lower is better)")
  ax.set_title(rho_text, fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_figures(c, out, cfg, scores, rank_m, singles, corr) -> str:
  """rank_heatmap.png, metric_heatmap.png and rank_vs_metric.png in `out`; -> the Spearman
  line they are titled with."""
  import os

  n = rank_m.shape[0]
  metric_m = np.full((n, n), np.nan)
  for s in singles:
    metric_m[s["edge"][0], s["edge"][1]] = s[PRIMARY]
  rho_text = f"Spearman(rank, -val loss) = {fmt_rho(corr['rank_vs_neg_val_loss'])}"
  heatmap(
    os.path.join(out, "rank_heatmap.png"),
    rank_m,
    f"gradient rank at init (rtol={scores.rtol:g}, {scores.num_tokens} tokens)\n"
    "diagonal sequential, j=i+1 parallel, above long-range, below recurrent",
    f"rank (of d_model={cfg.d_model})",
    "{:.0f}",
    "viridis",
    highlight=(0, 0),
  )
  heatmap(
    os.path.join(out, "metric_heatmap.png"),
    metric_m,
    f"single-edge adapter (rank {c.method.rank}, {c.train.num_steps} steps): "
    f"{c.data.task} validation label loss\n(lower is better; grey = not trained; red box "
    "= AdaLink's (0, 0))",
    "validation loss",
    "{:.3f}",
    "viridis_r",
    highlight=(0, 0),
  )
  scatter(os.path.join(out, "rank_vs_metric.png"), singles, rho_text, scores.rtol)
  return rho_text


def correlation_lines(corr) -> str:
  return (
    f"    Spearman(rank, class_acc) = {fmt_rho(corr['rank_vs_class_acc'])}; "
    f"Spearman(||G||_F, -val loss) = {fmt_rho(corr['grad_fro_norm_vs_neg_val_loss'])}\n"
    "    by rtol: "
    + ", ".join(f"{k}: {fmt_rho(v)}" for k, v in corr["rank_vs_neg_val_loss_by_rtol"].items())
  )


def search_table(c, search, single_00, num_val: int) -> str:
  """The random search against its references, as a fixed-width text table."""
  k, r = search["k"], c.method.rank
  rows = [
    (f"best of {len(search['trials'])} random {k}-edge sets", search["best"]),
    (f"top-{k} edges by gradient rank", search["topk_by_rank"]),
    (
      f"parallel everywhere ({len(search['everywhere']['edges'])} edges, r={r})",
      search["everywhere"],
    ),
    (
      f"AdaLink (0,0) r={search['adalink_equal_budget']['rank']} (= {k}-edge budget)",
      search["adalink_equal_budget"],
    ),
  ]
  if single_00 is not None:
    rows.append((f"AdaLink (0,0) r={r} (single edge)", single_00))
  header = (
    f"{'placement':46s} {'params':>7s} {'val_loss':>9s} {'tok_acc':>8s} "
    f"{'exact':>6s} {'cls_acc':>8s}  edges"
  )
  lines = [
    f"\n[4] random placement search, budget k={k} adapters of rank {r} "
    f"({c.train.num_steps} steps each, {c.data.task} validation, n={num_val})",
    header,
    "-" * len(header),
  ]
  for name, res in rows:
    edges = res.get("edges") or [res["edge"] + [res["kind"]]]
    lines.append(
      f"{name:46s} {res['params']:7d} {res['val_loss']:9.4f} {res['token_acc']:8.4f} "
      f"{res['exact_match']:6.3f} {res['class_acc']:8.3f}  {[tuple(e[:2]) for e in edges]}"
    )
  return "\n".join(lines)


def metric_record(num_val: int) -> Dict[str, Any]:
  return {
    "primary": PRIMARY,
    "better": "lower",
    "definition": "teacher-forced mean cross-entropy of the label tokens (label word "
    "+ EOS) on the validation split; token_acc: argmax accuracy of "
    "those tokens; exact_match: every label token argmax-correct "
    "(greedy decoding emits the label); class_acc: the label word "
    "with the highest log-likelihood is the gold one",
    "validation_examples": num_val,
  }


def score_record(scores, grid, nodes, rank_m, ranks_by_rtol, fro) -> Dict[str, Any]:
  scored = np.isfinite(rank_m)
  return {
    "rtol": scores.rtol,
    "num_batches": scores.num_batches,
    "num_tokens": scores.num_tokens,
    "grid_nodes": nodes,
    "ranks": matrix_json(rank_m),
    "ranks_by_rtol": {
      k: matrix_json(np.where(scored, r, np.nan)) for k, r in ranks_by_rtol.items()
    },
    "grad_fro_norm": matrix_json(np.where(scored, fro, np.nan)),
    "singular_values_relative": {
      f"{e.src},{e.dst}": (
        scores.singular_values[e.src, e.dst] / max(scores.singular_values[e.src, e.dst, 0], 1e-300)
      ).tolist()
      for e in grid
    },
  }
