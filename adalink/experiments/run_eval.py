"""Re-evaluate a run directory's checkpoint on its tasks (or others) with its own config.

The model, method, base checkpoint and data settings come from the run's config.json;
`overrides` change evaluation settings (dotted config fields, e.g. `eval.split`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

# The fields an evaluation may change without changing what was trained.
OVERRIDABLE = ("eval.split", "eval.max_examples", "eval.decode", "data.data_dir")


def evaluate_run(
  workdir: str,
  which: str = "latest",
  step: Optional[int] = None,
  overrides: Optional[Mapping[str, Any]] = None,
  tasks: Optional[Sequence[str]] = None,
  predictions_path: Optional[str] = None,
) -> Tuple[Dict[str, float], Dict[str, Any]]:
  """-> (metrics, a record of what was evaluated: run, step, method, tasks, metrics). With
  `predictions_path`, every decoded example is written there as a JSON line: the evaluation set,
  the input text, the decoded text (before the task's postprocessing) and the target text."""
  from adalink.train import trainer

  config = trainer.load_run_config(workdir)
  config.train.quiet = True
  for dotted, value in (overrides or {}).items():
    if dotted not in OVERRIDABLE:
      raise ValueError(f"evaluation override {dotted!r} is not one of {OVERRIDABLE}")
    if value is not None:
      section, field = dotted.split(".")
      config[section][field] = value
  if tasks:
    config.data.tasks = tuple(tasks)
  model, variables, data, p, restored = trainer.restore_for_eval(config, workdir, which, step)
  if predictions_path:
    with open(predictions_path, "w") as out:
      write = lambda name, ex, text: out.write(json.dumps(prediction_record(name, ex, text)) + "\n")
      results = trainer.evaluate(model, variables, data, config, p.mesh, p.spec, write)
  else:
    results = trainer.evaluate(model, variables, data, config, p.mesh, p.spec)
  record = {
    "workdir": os.path.abspath(workdir),
    "step": restored,
    "which": which,
    "method": config.method.to_dict(),
    "tasks": list(config.data.get("tasks", ())),
    "model_size": config.model.size,
    **results,
  }
  return results, record


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def prediction_record(name: str, example: Mapping[str, Any], text: str) -> Dict[str, Any]:
  return {
    "set": name,
    "inputs": _text(example.get("inputs_pretokenized", "")),
    "prediction": text,
    "target": _text(example.get("targets_pretokenized", "")),
  }


def append_record(path: str, record: Mapping[str, Any]) -> None:
  """Appends `record` to a JSON-lines file."""
  with open(path, "a") as f:
    f.write(json.dumps(record) + "\n")
