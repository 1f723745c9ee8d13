"""`data.kind = 'pretrain'`: T5 span corruption or prefix LM over plain text files.

Fields: `data.text_dir` (files or a glob), `data.objective` ('span_corruption' or 'prefix_lm'),
`data.validation_fraction` (documents held out by a hash of their text), `data.inputs_length`,
`data.targets_length` (0: derived from the inputs length, so packed span-corruption rows fill
exactly), `data.pack`, and the vocabulary fields of `model` (sentinels: `model.vocab_extra_ids`).
Evaluation is the teacher-forced loss on the held-out documents.
"""

from __future__ import annotations

from adalink import config_fields as cf
from adalink.data.families import base


class PretrainFamily(base.SeqioFamily):
  name = "pretrain"
  input_streams = ("text",)
  evaluation = "loss"

  def build(self, config, model: base.ModelFacts) -> base.Data:
    from adalink.data.tasks import pretrain

    vocabulary = base.vocabulary(config, model)
    lengths = base.lengths(config, targets_may_be_zero=True)
    task = pretrain.get_text_task(
      cf.existing_path(config, "data.text_dir"),
      objective=cf.one_of(config, "data.objective", pretrain.OBJECTIVES),
      vocabulary=vocabulary,
      inputs_length=lengths["inputs"],
      targets_length=lengths["targets"] or None,
      validation_fraction=float(cf.require(config, "data.validation_fraction")),
    )
    lengths.update(pretrain.feature_lengths(task))
    return base.Data(self.name, self, vocabulary, task, {"pretrain": task}, lengths)


FAMILY = base.register(PretrainFamily())
