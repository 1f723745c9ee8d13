"""`data.kind = 'glue'`: GLUE tasks in T5's text-to-text form, one task or a mixture.

Fields: `data.tasks` (GLUE task names), `data.source` ('tsv' with `data.data_dir`, or 'tfds' with
`data.tfds_data_dir`), `data.on_bad_row`, `data.mixture_cap` (several tasks), the lengths, and the
vocabulary fields of `model`. With 'tsv', a listed task without a train file is an error naming
the file, unless `data.only_tasks_with_train_file` keeps only the tasks that have one (logged). Evaluation decodes each task's validation split (MNLI as its matched
and mismatched views) and scores it with the task's own metrics.

Examples carry `task_id`, their task's index in the fixed GLUE task list, so the number of task
ids is one more than the largest id among the configured tasks. The evaluation `average` is the
paper's GLUE average (Tables 5 and 6): one number per task, its headline metric (accuracy; CoLA
Matthews correlation; STS-B Pearson; MRPC and QQP accuracy), MNLI once (matched).
"""

from __future__ import annotations

import logging
import os

from adalink import config_fields as cf
from adalink.data.families import base

log = logging.getLogger(__name__)


def _train_file(config, task: str):
  """The TSV train file of `task` under `data.data_dir` (None for TFDS sources)."""
  from adalink.data.tasks import glue_spec

  if cf.get(config, "data.source", "tsv") != "tsv":
    return None
  spec = glue_spec.get_spec(task)
  data_dir = cf.resolve_path(cf.require(config, "data.data_dir"))
  return os.path.join(data_dir, spec.tsv_dir, spec.tsv_split_files["train"])


def tasks(config):
  """The GLUE tasks a run trains on: `data.tasks`, checked to have their train files, or only
  those that do under `data.only_tasks_with_train_file`."""
  from adalink.data.tasks import glue_spec

  listed = base.task_names(config)
  for t in listed:
    try:
      glue_spec.get_spec(t)
    except (KeyError, ValueError) as e:
      raise ValueError(f"config.data.tasks: {e}") from None
  if not cf.get(config, "data.only_tasks_with_train_file", False):
    return listed
  kept = tuple(
    t for t in listed if _train_file(config, t) is None or os.path.exists(_train_file(config, t))
  )
  dropped = [t for t in listed if t not in kept]
  if not kept:
    raise FileNotFoundError(
      f"config.data.only_tasks_with_train_file: none of {list(listed)} has a train file under "
      f"{cf.get(config, 'data.data_dir')}"
    )
  if dropped:
    log.warning("training on %s: no train file for %s", list(kept), dropped)
  return kept


class GlueFamily(base.SeqioFamily):
  name = "glue"
  input_streams = ("text",)
  evaluation = "decode"

  def num_tasks(self, config) -> int:
    from adalink.data.tasks import glue_spec  # pure Python

    try:
      return 1 + max(glue_spec.task_id(t) for t in tasks(config))
    except ValueError as e:
      raise ValueError(f"config.data.tasks: {e}") from None

  def counts_in_average(self, set_name: str) -> bool:
    from adalink.data.tasks import glue_spec

    return glue_spec.get_spec(set_name).in_average

  def task_ids(self, config) -> dict:
    from adalink.data.tasks import glue_spec

    self.num_tasks(config)  # validates the names
    return {t: glue_spec.task_id(t) for t in tasks(config)}

  def build(self, config, model: base.ModelFacts) -> base.Data:
    from adalink.data.tasks import glue

    names = tasks(config)
    num_tasks = self.num_tasks(config)
    for name in names:
      path = _train_file(config, name)
      if path is not None and os.path.isdir(os.path.dirname(os.path.dirname(path))):
        if not os.path.exists(path):
          raise FileNotFoundError(
            f"config.data.tasks lists {name!r}, whose train file {path} does not exist; "
            f"give a data_dir that has it, or train on the tasks that do "
            f"(configs/glue.py: ',tasks=available'; config: data.only_tasks_with_train_file)"
          )
    vocabulary = base.vocabulary(config, model)
    lengths = base.lengths(config)
    source = cf.one_of(config, "data.source", glue.SOURCES)
    kw = dict(
      source=source,
      data_dir=cf.existing_path(config, "data.data_dir") if source == "tsv" else None,
      vocabulary=vocabulary,
      tfds_data_dir=cf.require(config, "data.tfds_data_dir") or None,
      on_bad_row=cf.require(config, "data.on_bad_row"),
    )
    if len(names) == 1:
      train = glue.get_glue_task(names[0], **kw)
    else:
      train = glue.get_glue_mixture(names, cap=cf.require(config, "data.mixture_cap"), **kw)
    evals = {}
    for name in names:
      for view in ("mnli_matched", "mnli_mismatched") if name == "mnli" else (name,):
        evals[view] = glue.get_glue_task(view, **kw)
    return base.Data(self.name, self, vocabulary, train, evals, lengths, num_tasks)


FAMILY = base.register(GlueFamily())
