"""`data.kind = 'glue'`: GLUE tasks in T5's text-to-text form, one task or a mixture.

Fields: `data.tasks` (GLUE task names), `data.source` ('tsv' with `data.data_dir`, or 'tfds' with
`data.tfds_data_dir`), `data.on_bad_row`, `data.mixture_cap` (several tasks), the lengths, and the
vocabulary fields of `model`. Evaluation decodes each task's validation split (MNLI as its matched
and mismatched views) and scores it with the task's own metrics.

Examples carry `task_id`, their task's index in the fixed GLUE task list, so the number of task
ids is one more than the largest id among the configured tasks. The evaluation `average` is the
paper's GLUE average (Tables 5 and 6): one number per task, its headline metric (accuracy; CoLA
Matthews correlation; STS-B Pearson; MRPC and QQP accuracy), MNLI once (matched).
"""

from __future__ import annotations

from adalink import config_fields as cf
from adalink.data.families import base


class GlueFamily(base.SeqioFamily):
  name = "glue"
  input_streams = ("text",)
  evaluation = "decode"

  def num_tasks(self, config) -> int:
    from adalink.data.tasks import glue_spec  # pure Python

    try:
      return 1 + max(glue_spec.task_id(t) for t in base.task_names(config))
    except ValueError as e:
      raise ValueError(f"config.data.tasks: {e}") from None

  def counts_in_average(self, set_name: str) -> bool:
    from adalink.data.tasks import glue_spec

    return glue_spec.get_spec(set_name).in_average

  def task_ids(self, config) -> dict:
    from adalink.data.tasks import glue_spec

    self.num_tasks(config)  # validates the names
    return {t: glue_spec.task_id(t) for t in base.task_names(config)}

  def build(self, config, model: base.ModelFacts) -> base.Data:
    from adalink.data.tasks import glue

    tasks = base.task_names(config)
    num_tasks = self.num_tasks(config)  # validates the names
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
    if len(tasks) == 1:
      train = glue.get_glue_task(tasks[0], **kw)
    else:
      train = glue.get_glue_mixture(tasks, cap=cf.require(config, "data.mixture_cap"), **kw)
    evals = {}
    for name in tasks:
      for view in ("mnli_matched", "mnli_mismatched") if name == "mnli" else (name,):
        evals[view] = glue.get_glue_task(view, **kw)
    return base.Data(self.name, self, vocabulary, train, evals, lengths, num_tasks)


FAMILY = base.register(GlueFamily())
