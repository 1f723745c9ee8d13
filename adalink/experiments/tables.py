"""Paper-shaped Markdown tables and a score-vs-rank plot from sweep results (results.jsonl).

Rows are methods (with rank), columns the tasks' scores (each task's headline metric, as the
paper reports it: accuracy, CoLA MCC, STS-B Pearson, MNLI matched) and their average, plus
trainable parameters, as in Tables 5 and 6 of the paper.
When several runs share a row and task, the latest is shown.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Dict, List

METHOD_ORDER = {"ft": 0, "lora": 1, "pt": 2, "adalink": 3}
LABELS = {"ft": "FT", "lora": "LoRA", "pt": "PT", "adalink": "AdaLink"}


def load(path: str) -> List[Dict[str, Any]]:
  records = []
  with open(path) as f:
    for n, line in enumerate(f, 1):
      line = line.strip()
      if not line:
        continue
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{n}: not a JSON line ({e})") from None
  if not records:
    raise ValueError(f"{path}: no results")
  return records


def task_score(record) -> float:
  """The task's headline metric as the paper reports it (a GLUE task's first metric: MRPC
  accuracy, STS-B Pearson, CoLA MCC; MNLI its matched accuracy); for runs of one eval task under
  another label (captioning), its `average`."""
  from adalink.data.tasks import glue_spec

  task = record["task"]
  view = "mnli_matched" if task == "mnli" else task
  if task not in glue_spec.GLUE_TASK_NAMES or not any(k.startswith(view + "/") for k in record):
    return record.get("average", float("nan"))
  key = f"{view}/{glue_spec.get_spec(view).metric_names[0]}"
  return float(record[key]) if key in record else float("nan")


def table(records) -> str:
  tasks = list(OrderedDict.fromkeys(r["task"] for r in records))
  rows = OrderedDict()
  for r in records:
    key = (r["method"], r.get("rank"), r.get("variant", "").split(",")[0].startswith("unified"))
    rows.setdefault(key, {})[r["task"]] = (
      task_score(r),
      r.get("trainable_params"),
      r.get("first_loss"),
      r.get("last_loss"),
    )
  keys = sorted(rows, key=lambda k: (METHOD_ORDER.get(k[0], 9), k[2], k[1] or 0))
  with_loss = any(r.get("first_loss") is not None for r in records)
  lines = [
    "| method | # params | "
    + " | ".join(tasks)
    + " | avg |"
    + (" train loss first -> last |" if with_loss else ""),
    "|---|---:|" + "---:|" * (len(tasks) + 1) + ("---|" if with_loss else ""),
  ]
  for key in keys:
    cells = rows[key]
    label = (
      LABELS.get(key[0], key[0])
      + (" unified" if key[2] else "")
      + (f" r={key[1]}" if key[1] else "")
    )
    params = next((c[1] for c in cells.values() if c[1] is not None), None)
    scores = [cells[t][0] if t in cells else None for t in tasks]
    done = [s for s in scores if s is not None]
    avg = sum(done) / len(done) if len(done) == len(tasks) else None
    fmt = lambda s: "-" if s is None else f"{s:.1f}"
    lines.append(f"| {label} | {params:,} | " if params is not None else f"| {label} | - | ")
    lines[-1] += " | ".join(fmt(s) for s in scores) + f" | {fmt(avg)} |"
    if with_loss:
      losses = "; ".join(f"{c[2]:.3f} -> {c[3]:.3f}" for c in cells.values() if c[2] is not None)
      lines[-1] += f" {losses} |"
  return "\n".join(lines)


def plot(records, path: str) -> None:
  """Score (averaged over tasks) against rank for AdaLink and LoRA; FT and PT as lines."""
  import matplotlib

  matplotlib.use("Agg")  # files only
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(5, 3.5))
  for method in ("adalink", "lora"):
    by_rank = {}
    for r in records:
      if r["method"] == method and r.get("rank"):
        by_rank.setdefault(r["rank"], []).append(task_score(r))
    if by_rank:
      ranks = sorted(by_rank)
      ax.plot(ranks, [sum(by_rank[k]) / len(by_rank[k]) for k in ranks], "o-", label=LABELS[method])
  for method in ("ft", "pt"):
    scores = [task_score(r) for r in records if r["method"] == method]
    if scores:
      ax.axhline(
        sum(scores) / len(scores),
        ls="--",
        lw=1,
        label=LABELS[method],
        color="gray" if method == "ft" else "tab:red",
      )
  ax.set_xscale("log", base=2)
  ax.set_xlabel("rank")
  ax.set_ylabel("score (avg over tasks)")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _row_key(record):
  return record["method"], record.get("rank")


def compare_bases(results: "OrderedDict[str, List[Dict[str, Any]]]") -> str:
  """Table 5's shape for the same grid trained from several bases: one row per method (and
  rank), each task's score and the average as `A / B / ...` in the order of `results` (base name
  -> its records), trainable parameters, and each base's average minus FT's from that base."""
  names = list(results)
  tasks = list(OrderedDict.fromkeys(r["task"] for recs in results.values() for r in recs))
  cells = {}  # (method, rank) -> base -> task -> score
  params = {}
  for name, records in results.items():
    for r in records:
      cells.setdefault(_row_key(r), {}).setdefault(name, {})[r["task"]] = task_score(r)
      params.setdefault(_row_key(r), r.get("trainable_params"))
  keys = sorted(cells, key=lambda k: (METHOD_ORDER.get(k[0], 9), k[1] or 0))

  def average(key, name):
    scores = cells.get(key, {}).get(name, {})
    return sum(scores[t] for t in tasks) / len(tasks) if all(t in scores for t in tasks) else None

  ft = next((k for k in keys if k[0] == "ft"), None)
  fmt = lambda s: "-" if s is None else f"{s:.1f}"
  both = " / ".join(names)
  lines = [
    f"| method | # params | {' | '.join(tasks)} | avg | δ avg to FT |",
    "|---|---:|" + "---:|" * (len(tasks) + 2),
    f"| (each cell: {both}) | | " + " | ".join("" for _ in tasks) + " | | |",
  ]
  for key in keys:
    label = LABELS.get(key[0], key[0]) + (f" r={key[1]}" if key[1] else "")
    by_task = [" / ".join(fmt(cells[key].get(n, {}).get(t)) for n in names) for t in tasks]
    avgs = [average(key, n) for n in names]
    deltas = [
      None if a is None or ft is None or average(ft, n) is None else a - average(ft, n)
      for a, n in zip(avgs, names)
    ]
    delta = " / ".join("-" if d is None else f"{d:+.1f}" for d in deltas)
    n_params = f"{params[key]:,}" if params.get(key) is not None else "-"
    lines.append(
      f"| {label} | {n_params} | {' | '.join(by_task)} | {' / '.join(fmt(a) for a in avgs)} "
      f"| {delta} |"
    )
  return "\n".join(lines)
