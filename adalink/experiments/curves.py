"""A training run's curve from its `metrics.jsonl`: validation loss and token accuracy against
the tokens seen, as a Markdown table and a PNG (used for the shipped base's pretraining record).

A run that was resumed (or whose settings changed between restarts) has several `setup` records;
the curve keeps, for every step, the last record written for it, so re-done steps replace the
abandoned ones.
"""

from __future__ import annotations

import json
from typing import Dict, List


def read_curve(metrics_path: str, tokens_per_step: int) -> List[Dict[str, float]]:
  """One row per evaluated step: step, tokens, validation loss and token accuracy (%), with the
  mean training loss of the last logged window before it."""
  evals: Dict[int, dict] = {}
  train: Dict[int, dict] = {}
  with open(metrics_path) as f:
    for n, line in enumerate(f, 1):
      line = line.strip()
      if not line:
        continue
      try:
        rec = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{metrics_path}:{n}: not a JSON line ({e.msg})") from None
      if rec.get("kind") == "eval":
        evals[int(rec["step"])] = rec
      elif rec.get("kind") == "train":
        train[int(rec["step"])] = rec
  rows = []
  for step in sorted(evals):
    before = [s for s in train if s <= step]
    rows.append(
      {
        "step": step,
        "tokens": step * tokens_per_step,
        "validation_loss": float(evals[step]["loss"]),
        "token_accuracy": float(evals[step]["token_accuracy"]),
        "train_loss": float(train[max(before)]["loss"]) if before else float("nan"),
      }
    )
  return rows


def markdown(rows: List[Dict[str, float]]) -> str:
  lines = [
    "| step | input tokens seen | validation loss | token accuracy (%) | train loss (last window) |",
    "|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    lines.append(
      f"| {r['step']} | {r['tokens']:,} | {r['validation_loss']:.3f} | "
      f"{r['token_accuracy']:.2f} | {r['train_loss']:.3f} |"
    )
  return "\n".join(lines) + "\n"


def plot(rows: List[Dict[str, float]], png_path: str, title: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  tokens = [r["tokens"] / 1e6 for r in rows]
  fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
  ax[0].plot(tokens, [r["validation_loss"] for r in rows], marker="o")
  ax[0].set_xlabel("input tokens seen (M)")
  ax[0].set_ylabel("validation loss")
  ax[1].plot(tokens, [r["token_accuracy"] for r in rows], marker="o", color="C1")
  ax[1].set_xlabel("input tokens seen (M)")
  ax[1].set_ylabel("validation token accuracy (%)")
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(png_path, dpi=110)
  plt.close(fig)
