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
