"""The evaluation `average` of a multi-task GLUE run is the paper's GLUE average (Tables 5, 6):
the plain mean of one number per task (accuracy; CoLA MCC; STS-B Pearson; MRPC accuracy, not its
F1), MNLI counted once (matched), computed here from the run's own per-set numbers."""

import numpy as np

from adalink.data.tasks import glue_spec
from adalink.train import evaluate as evaluate_lib
from adalink.train import trainer
from configs import glue as glue_configs

TASKS = ("mnli", "mrpc", "stsb", "cola", "sst2")
PAPER_COLUMN = {
  "mnli_matched": "accuracy",
  "mrpc": "accuracy",
  "stsb": "pearson_corrcoef",
  "cola": "matthews_corrcoef",
  "sst2": "accuracy",
}


def test_multi_task_average_is_the_papers_formula(monkeypatch):
  config = glue_configs.get_config("smoke,task=" + "+".join(TASKS))
  config.eval.max_examples = 0
  p = trainer.plan(config)
  data = trainer.build_data(config, p.model_config)

  # Decode each example to its own target on two rows of three and to a wrong label otherwise,
  # so every metric is a real, distinct number (a trained model's decodes are not needed here).
  vocab = data.vocabulary
  decoded = {"n": 0}

  def fake_decode(model, variables, batch, config, mesh, spec, batch_size):
    rows = []
    for tokens in np.asarray(batch["decoder_target_tokens"]):
      text = vocab.decode([int(t) for t in tokens if t > 1])
      decoded["n"] += 1
      if decoded["n"] % 3 == 0:
        text = "not_a_label" if text[:1].isalpha() else str(float(text) + 1.7)
      rows.append(list(vocab.encode(text)) + [1])
    out = np.zeros((len(rows), max(map(len, rows))), np.int32)
    for i, r in enumerate(rows):
      out[i, : len(r)] = r
    return out

  monkeypatch.setattr(evaluate_lib, "decode_batch", fake_decode)
  results = evaluate_lib.evaluate(None, None, data, config, p.mesh, p.spec)
  assert set(PAPER_COLUMN) | {"mnli_mismatched"} == {k.split("/")[0] for k in results} - {"average"}
  paper = np.mean([results[f"{name}/{metric}"] for name, metric in PAPER_COLUMN.items()])
  assert results["average"] == paper
  # Not the old average (each set's mean over all its metrics, MNLI twice): the numbers differ.
  every_metric = [
    np.mean([v for k, v in results.items() if k.startswith(s + "/") and "num_examples" not in k])
    for s in list(PAPER_COLUMN) + ["mnli_mismatched"]
  ]
  assert abs(float(np.mean(every_metric)) - paper) > 0.1
  assert [glue_spec.get_spec(s).metric_names[0] for s in PAPER_COLUMN] == list(
    PAPER_COLUMN.values()
  )
