"""Evaluation: one evaluator for every data family.

Families that decode (`evaluation = "decode"`) give, per evaluation set, model batches and the
examples behind them. Each batch is decoded, and each evaluation set (a seqio Task) scores itself:
its `postprocess_fn` maps the decoded text (and the example's target) to what its `metric_fns`
compare. Results are `<set>/<metric>` plus `<set>/num_examples`, and `average`, the mean over sets
of each set's headline metric (the first value its first metric function returns, e.g. MRPC
accuracy, STS-B Pearson), over the sets the family counts (`counts_in_average`: GLUE counts MNLI
once), as the paper's GLUE average does. Families without decoding metrics (`evaluation = "loss"`) get the
teacher-forced token loss and accuracy instead.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional

import jax
import numpy as np
from jax.experimental import multihost_utils

from adalink import config_fields as cf
from adalink.train import decoding, inputs, partitioning
from adalink.train import step as step_lib

DECODE_METHODS = ("greedy", "beam")


# Called with (evaluation set name, example, decoded text) for every decoded example.
OnPrediction = Callable[[str, Mapping[str, Any], str], None]


def evaluate(
  model,
  variables,
  data: inputs.Data,
  config,
  mesh,
  spec,
  on_prediction: Optional[OnPrediction] = None,
) -> Dict[str, float]:
  """Scores `data`'s evaluation sets the way its family asks (decoding metrics, or loss);
  `on_prediction` sees every decoded example (e.g. to write the predictions out)."""
  if data.family.evaluation == "loss":
    return evaluate_loss(model, variables, data, config, mesh)
  return evaluate_decoding(model, variables, data, config, mesh, spec, on_prediction)


def decode_batch(model, variables, batch, config, mesh, spec, batch_size: int) -> np.ndarray:
  """Decoded ids for one (possibly short) eval batch; every process gets all rows back."""
  n = len(batch["encoder_input_tokens"])
  n_proc, pid = jax.process_count(), jax.process_index()
  local = batch_size // n_proc
  keys = (
    ["encoder_input_tokens"]
    + (["task_id"] if spec.num_tasks > 1 else [])
    + (["images"] if "images" in batch else [])
  )
  # Pad the last batch to the compiled size; the padding rows are dropped after decoding.
  feats = {
    k: inputs.pad_rows(np.asarray(batch[k]), batch_size)[pid * local : (pid + 1) * local]
    for k in keys
  }
  feats = partitioning.global_batch(feats, mesh)
  tokens = feats.pop("encoder_input_tokens")
  method = cf.one_of(config, "eval.decode", DECODE_METHODS)
  out = decoding.decode(
    model,
    variables,
    tokens,
    cf.positive_int(config, "eval.max_decode_len"),
    method=method,
    beam_size=int(cf.require(config, "eval.beam_size")),
    alpha=float(cf.require(config, "eval.alpha")),
    **feats,
  )
  return np.asarray(multihost_utils.process_allgather(out, tiled=True))[:n]


def score(task, targets: List[Any], predictions: List[Any]) -> Dict[str, float]:
  """`task`'s own metrics on postprocessed targets and predictions."""
  metric_fns = getattr(task, "predict_metric_fns", None)
  if metric_fns is None:
    metric_fns = task.metric_fns
  if not metric_fns:
    raise ValueError(
      f"evaluation set {getattr(task, 'name', task)!r} has no metric_fns that score "
      f"predictions; give its seqio Task metric_fns(targets, predictions)"
    )
  out: Dict[str, float] = {}
  for fn in metric_fns:
    out.update({k: float(v) for k, v in fn(targets, predictions).items()})
  return out


def _target_text(example: Mapping[str, Any], name: str):
  if "targets_pretokenized" not in example:
    raise ValueError(
      f"evaluation set {name!r}: its examples have no 'targets_pretokenized' to score "
      f"against (features: {sorted(example)}); tokenize targets with seqio's tokenize "
      f"preprocessor, which keeps the text"
    )
  return example["targets_pretokenized"]


def evaluate_decoding(
  model, variables, data, config, mesh, spec, on_prediction: Optional[OnPrediction] = None
) -> Dict[str, float]:
  """Decodes every evaluation set and scores it with its task's postprocessing and metrics."""
  split = cf.require(config, "eval.split")
  batch_size = cf.positive_int(config, "eval.batch_size")
  max_examples = int(cf.require(config, "eval.max_examples") or 0)
  results: Dict[str, float] = {}
  primaries = []
  for name, task in data.evals.items():
    predictions, targets = [], []
    for batch, examples in data.family.eval_batches(config, data, name, split, batch_size):
      out = decode_batch(model, variables, batch, config, mesh, spec, batch_size)
      rows = decoding.trim_after_eos(out)
      if len(rows) != len(examples):
        raise ValueError(
          f"data family {data.family.name!r}: evaluation set {name!r} gave a batch of "
          f"{len(rows)} rows with {len(examples)} examples"
        )
      for row, ex in zip(rows, examples):
        text = data.vocabulary.decode(row)
        if on_prediction is not None:
          on_prediction(name, ex, text)
        predictions.append(task.postprocess_fn(text, example=ex, is_target=False))
        targets.append(task.postprocess_fn(_target_text(ex, name), example=ex, is_target=True))
      if max_examples and len(predictions) >= max_examples:
        break
    task_metrics = score(task, targets, predictions)
    if jax.process_index() == 0:
      for p, t in list(zip(predictions, targets))[: data.family.examples_to_show]:
        print(f"  [{name}] prediction: {p!r} | target: {t!r}", flush=True)
    for k, v in task_metrics.items():
      results[f"{name}/{k}"] = v
    if data.family.counts_in_average(name):
      primaries.append(float(next(iter(task_metrics.values()))))
    results[f"{name}/num_examples"] = float(len(predictions))
  if not primaries:
    raise ValueError(
      f"data family {data.family.name!r}: none of the evaluation sets {list(data.evals)} counts "
      f"in the average"
    )
  results["average"] = float(np.mean(primaries))
  return results


def evaluate_loss(model, variables, data, config, mesh) -> Dict[str, float]:
  """Teacher-forced token loss and accuracy on the validation split (pretraining eval)."""
  split = cf.require(config, "eval.split")
  batch_size = cf.positive_int(config, "eval.batch_size")
  max_batches = int(cf.require(config, "eval.max_batches") or 0)  # 0: the whole split
  n_proc, pid = jax.process_count(), jax.process_index()
  local = batch_size // n_proc
  loss = jax.jit(lambda v, b: step_lib.loss_fn(model, v, {}, b, None, True)[1])
  totals = {"loss_sum": 0.0, "weight_sum": 0.0, "correct": 0.0}
  for i, batch in enumerate(data.family.loss_batches(config, data, split, batch_size)):
    if max_batches and i >= max_batches:
      break
    batch = {
      k: inputs.pad_rows(np.asarray(v), batch_size)[pid * local : (pid + 1) * local]
      for k, v in inputs.batch_features(batch).items()
    }
    aux = jax.device_get(loss(variables, partitioning.global_batch(batch, mesh)))
    for k in totals:
      totals[k] += float(aux[k])
  weight = max(totals["weight_sum"], 1.0)
  return {
    "loss": totals["loss_sum"] / weight,
    "token_accuracy": 100.0 * totals["correct"] / weight,
    "num_tokens": totals["weight_sum"],
    "average": -totals["loss_sum"] / weight,
  }
