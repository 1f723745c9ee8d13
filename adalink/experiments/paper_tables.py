"""The paper's Tables 1-6 in their own shape, from sweep results (`results.jsonl` lines that carry a
paper run's identity, written by `scripts/sweep.py --paper-table N`).

A table's runs (`adalink.experiments.paper_rows`) are each filled from the latest result with the
same identity (setting, checkpoint family, method, rank, unified, dataset), whichever table's
sweep produced it, so rows of different settings or checkpoint families never share a result.
Scores are the best checkpoint's (the sweep records those); a GLUE task's score is its headline
metric (accuracy, CoLA MCC, STS-B Pearson, MNLI matched), a multimodal run's the `average` of its
one evaluation set (CIDEr, VQA accuracy, ANLS). "Avg." is the plain mean of a row's cells;
"avg. delta to FT" the mean over datasets of (row - FT) per checkpoint family. With `with_paper`
each row is followed by the paper's own numbers. `#params` is counted from the model that ran,
the paper's count beside it.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from adalink.experiments import paper_rows as paper

Cell = Optional[float]


def _identity(record: dict) -> Tuple:
  return tuple(
    record.get(f) for f in ("setting", "checkpoint", "method", "rank", "unified", "dataset")
  )


def index(records: Sequence[dict]) -> Dict[Tuple, dict]:
  """identity -> the latest record with it (records without an identity are skipped)."""
  out = {}
  for r in records:
    if r.get("setting") is not None:
      out[_identity(r)] = r
  return out


def glue_score(record: dict, task: str) -> Cell:
  from adalink.data.tasks import glue_spec

  view = "mnli_matched" if task == "mnli" else task
  value = record.get(f"{view}/{glue_spec.get_spec(view).metric_names[0]}")
  return None if value is None else float(value)


def run_scores(run, record: Optional[dict]) -> Dict[str, Cell]:
  """dataset -> our score for each dataset the paper reports for `run`."""
  if record is None:
    return {d: None for d in run.paper}
  if run.setting == "multimodal":
    value = record.get("average")
    return {run.dataset: None if value is None else float(value)}
  return {task: glue_score(record, task) for task in run.paper}


def _mean(values: Sequence[Cell]) -> Cell:
  if not values or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
    return None
  return sum(values) / len(values)


def _fmt(value: Cell, digits: int = 1) -> str:
  if value is None:
    return "-"
  return f"{value:+.{digits}f}" if digits == 2 else f"{value:.{digits}f}"


def _params(records: Sequence[Optional[dict]]) -> str:
  counts = [r.get("trainable_params") for r in records if r is not None]
  counts = [c for c in counts if c is not None]
  if not counts:
    return "-"
  if len(records) > 1 and len(set(counts)) == 1:
    return f"{counts[0]:,} x {len(records)}"
  return f"{sum(counts):,}" if len(set(counts)) > 1 else f"{counts[0]:,}"


class Table:
  """A header and rows of cells (strings), rendered as Markdown or CSV."""

  def __init__(self, title: str, header: List[str]):
    self.title, self.header, self.rows = title, header, []

  def add(self, cells: List[str]) -> None:
    self.rows.append(cells)

  def markdown(self) -> str:
    lines = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |"]
    lines.append("|" + "---|" * len(self.header))
    lines += ["| " + " | ".join(row) + " |" for row in self.rows]
    return "\n".join(lines)

  def csv(self) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(self.header)
    writer.writerows(self.rows)
    return out.getvalue()


def _glue_rows(runs, found) -> List[Tuple[Any, List[Any], Dict[str, Cell], List[Optional[dict]]]]:
  """Table 5/6 rows: (a run of the row, its runs, task -> score, the records)."""
  rows: Dict[Tuple, List[Any]] = {}
  for run in runs:
    rows.setdefault((run.setting, run.checkpoint, run.method, run.rank), []).append(run)
  out = []
  for row_runs in rows.values():
    records = [found.get(r.identity) for r in row_runs]
    scores: Dict[str, Cell] = {}
    for run, record in zip(row_runs, records):
      scores.update(run_scores(run, record))
    out.append((row_runs[0], row_runs, {t: scores.get(t) for t in paper.GLUE_COLUMNS}, records))
  return out


def glue_table(number: int, runs, records, with_paper: bool) -> Table:
  found = index(records)
  first = (
    ["Setting", "Checkpoint", "Method", "#Tunable Param."]
    if number == 5
    else [
      "Checkpoint",
      "Rank r",
    ]
  )
  header = first + [paper.GLUE_METRIC_LABELS[t] for t in paper.GLUE_COLUMNS] + ["Avg."]
  table = Table(f"Table {number}", header)
  for run, row_runs, scores, recs in _glue_rows(runs, found):
    ours = [scores[t] for t in paper.GLUE_COLUMNS]
    label = paper.CHECKPOINT_LABELS[run.checkpoint]
    if number == 5:
      lead = [run.setting.replace("_", " "), label, paper.METHOD_LABELS[run.method], _params(recs)]
    else:
      lead = [label, str(run.rank)]
    table.add(lead + [_fmt(v) for v in ours] + [_fmt(_mean(ours))])
    if with_paper:
      theirs = {}
      for r in row_runs:
        theirs.update(r.paper)
      values = [theirs[t] for t in paper.GLUE_COLUMNS]
      avg = (
        paper.TABLE5[(run.setting, run.checkpoint, run.method)][2]
        if number == 5
        else paper.TABLE6[(run.checkpoint, run.rank)][1]
      )
      paper_lead = ["", "", "paper", run.paper_params] if number == 5 else ["", "paper"]
      table.add(paper_lead + [_fmt(v) for v in values] + [_fmt(avg)])
  return table


def _by(runs, found):
  """(method, rank, unified, checkpoint, dataset) -> (run, our score, record)."""
  out = {}
  for run in runs:
    record = found.get(run.identity)
    out[(run.method, run.rank, run.unified, run.checkpoint, run.dataset)] = (
      run,
      run_scores(run, record)[run.dataset],
      record,
    )
  return out


def _delta(cells: Dict[str, Cell], ft: Dict[str, Cell]) -> Cell:
  diffs = [None if cells[d] is None or ft.get(d) is None else cells[d] - ft[d] for d in cells]
  return _mean(diffs)


def multimodal_table(number: int, runs, records, with_paper: bool) -> Table:
  found = index(records)
  cells = _by(runs, found)
  if number in (1, 4):
    datasets = paper.CAPTION_COLUMNS if number == 1 else paper.VQA_COLUMNS
    names = {
      "coco": "COCO",
      "textcaps": "TextCaps",
      "okvqa": "OKVQA",
      "docvqa": "DocVQA",
      "stvqa": "ST-VQA",
      "textvqa": "TextVQA",
    }
    header = ["Method"] + (["Non-intrusive"] if number == 1 else []) + ["# params"]
    header += [f"{names[d]} {c}" for d in datasets for c in ("MMIT", "Raw")]
    header += ["avg. δ to FT MMIT", "avg. δ to FT Raw"]
    table = Table(f"Table {number}", header)
    methods = list(dict.fromkeys(r.method for r in runs))
    ft_scores = {
      c: {d: cells[(m, r, u, c, d)][1] for (m, r, u, c2, d) in cells if m == "ft" and c2 == c}
      for c in ("mmit", "raw")
    }
    for method in methods:
      keys = [k for k in cells if k[0] == method]
      rank, unified = keys[0][1], keys[0][2]
      ours = {
        (c, d): cells[(method, rank, unified, c, d)][1] for d in datasets for c in ("mmit", "raw")
      }
      recs = [cells[k][2] for k in keys]
      lead = [paper.METHOD_LABELS[method]]
      if number == 1:
        lead.append(paper.TABLE1_NON_INTRUSIVE[method])
      lead.append(_params(recs[:1]))
      deltas = [_delta({d: ours[(c, d)] for d in datasets}, ft_scores[c]) for c in ("mmit", "raw")]
      table.add(
        lead
        + [_fmt(ours[(c, d)]) for d in datasets for c in ("mmit", "raw")]
        + [_fmt(x, 2) for x in deltas]
      )
      if with_paper:
        run = cells[keys[0]][0]
        theirs = {}
        for k in keys:
          theirs[(k[3], k[4])] = cells[k][0].paper[k[4]]
        plead = ["paper"] + ([""] if number == 1 else []) + [run.paper_params]
        pdelta = paper.PAPER_DELTA[number][method]
        table.add(
          plead
          + [_fmt(theirs[(c, d)]) for d in datasets for c in ("mmit", "raw")]
          + [_fmt(x, 2) for x in pdelta]
        )
    return table
  if number == 2:
    ranks = [k[1] for k in cells]
    table = Table("Table 2", ["Rank"] + [str(r) for r in ranks])
    table.add(["CIDEr"] + [_fmt(cells[k][1]) for k in cells])
    if with_paper:
      table.add(["CIDEr (paper)"] + [_fmt(cells[k][0].paper["coco"]) for k in cells])
    return table
  if number == 3:
    order = [(True, "mmit"), (True, "raw"), (False, "mmit"), (False, "raw")]
    key = {(k[2], k[3]): k for k in cells}
    header = [""] + [
      ("Single unified AdaLink " if u else "Modality-based AdaLink ") + paper.CHECKPOINT_LABELS[c]
      for u, c in order
    ]
    table = Table("Table 3", header)
    table.add(["CIDEr"] + [_fmt(cells[key[o]][1]) for o in order])
    table.add(["# params"] + [_params([cells[key[o]][2]]) for o in order])
    if with_paper:
      table.add(["CIDEr (paper)"] + [_fmt(cells[key[o]][0].paper["coco"]) for o in order])
    return table
  raise ValueError(f"table {number} is not a multimodal table")


def paper_table(number: int, records: Sequence[dict], with_paper: bool = False) -> Table:
  runs = paper.table_runs(number)
  if number in (5, 6):
    return glue_table(number, runs, records, with_paper)
  return multimodal_table(number, runs, records, with_paper)


def plot_rank(number: int, records: Sequence[dict], path: str, with_paper: bool = False) -> None:
  """Score against rank (Table 2: COCO CIDEr; Table 6: the GLUE average per checkpoint)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  if number not in (2, 6):
    raise ValueError(f"only the rank tables (2 and 6) have a plot; got table {number}")
  runs = paper.table_runs(number)
  found = index(records)
  fig, ax = plt.subplots(figsize=(5, 3.5))
  if number == 2:
    series = {
      "COCO (MMIT)": [
        (r.rank, run_scores(r, found.get(r.identity))["coco"], r.paper["coco"]) for r in runs
      ]
    }
  else:
    series = {}
    for run, _, scores, _ in _glue_rows(runs, found):
      avg = _mean(list(scores.values()))
      series.setdefault(paper.CHECKPOINT_LABELS[run.checkpoint], []).append(
        (run.rank, avg, paper.TABLE6[(run.checkpoint, run.rank)][1])
      )
  for label, points in series.items():
    ours = [(r, s) for r, s, _ in points if s is not None]
    if ours:
      ax.plot([r for r, _ in ours], [s for _, s in ours], "o-", label=f"{label} (ours)")
    if with_paper:
      ax.plot([r for r, _, _ in points], [p for _, _, p in points], "s--", label=f"{label} (paper)")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("rank r")
  ax.set_ylabel("CIDEr" if number == 2 else "GLUE average")
  ax.set_title(f"Table {number}")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
