"""`train_and_evaluate(config, workdir)`: the training job every config launches.

Order of work, chosen so a bad run cannot damage a good directory:
  1. everything that can be wrong is checked first (`plan`: model and data families, method,
     model size, checkpoint paths, mesh, batch divisibility; the memory plan, refused when it
     cannot fit a device that reports its memory; then the data) and the work dir is not created
     or touched until all of it passed;
  2. the frozen base comes from its original checkpoint (or the config's seed for random-init
     runs), adapters are initialised around it, and the latest run checkpoint, if any, is restored
     (trainable weights, optimiser state, step, data position);
  3. the loop trains, logs, checkpoints every N steps and evaluates every M steps; a non-finite
     loss stops it before anything computed from it is saved.

The work is split by job: `plan` (validation), `inputs` (data through its family), `state`
(variables, shardings, optimiser, restore), `loop`, `evaluate`, `metrics_log` and `rundir`. The
model comes from the model family named by `model.kind` and the data from the data family named by
`data.kind`; this module knows neither. The data layer (seqio, TensorFlow) is imported only by
the families' build functions, so this module imports without TensorFlow.

The names below are this package's public surface (scripts and tests use them).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict

import jax

from adalink import config_fields as cf
from adalink.train import loop
from adalink.train import step as step_lib  # noqa: F401  (public: step_lib.MODEL_FEATURES)
from adalink.train.evaluate import evaluate, evaluate_loss
from adalink.train.inputs import Data, build_data, pad_rows, peek_first, train_batches
from adalink.train.metrics_log import MetricsLog
from adalink.train.preemption import StopRequest
from adalink.train.plan import (
  Plan,
  build_model,
  maybe_initialize_distributed,
  method_spec,
  model_config,
  plan,
)
from adalink.train.rundir import check_resumable, load_run_config
from adalink.train.state import load_base, restore_for_eval, shard_variables

config_get = cf.get
config_to_json = cf.to_json
resolve_path = cf.resolve_path
log = logging.getLogger("adalink.train")

__all__ = [
  "Data",
  "MetricsLog",
  "Plan",
  "build_data",
  "build_model",
  "check_resumable",
  "config_get",
  "config_to_json",
  "evaluate",
  "evaluate_loss",
  "load_base",
  "load_run_config",
  "maybe_initialize_distributed",
  "method_spec",
  "model_config",
  "pad_rows",
  "plan",
  "resolve_path",
  "restore_for_eval",
  "shard_variables",
  "train_and_evaluate",
  "train_batches",
]


def train_and_evaluate(config, workdir: str) -> Dict[str, Any]:
  """Trains per `config`, evaluating and checkpointing into `workdir`; returns final metrics."""
  from adalink.train import checkpoints as ckpt_lib
  from adalink.train import rundir
  from adalink.train import state as state_lib

  from adalink.train import memory_plan

  maybe_initialize_distributed(config)
  p = plan(config)
  memory_plan.check_fits_here(config, tuple(p.mesh.devices.shape), log.info)
  data = build_data(config, p.model_config)
  rundir.check_usable(workdir)
  check_resumable(workdir, config)
  rng = jax.random.PRNGKey(int(cf.require(config, "seed")))
  state = state_lib.init_state(p, load_base(p), rng)
  # A run's data position is its step (see `save`). The first batch is read before the work dir
  # is touched, so a malformed data row (the data layer reads lazily) is refused with nothing
  # written.
  position = ckpt_lib.latest_step_on_disk(workdir) or 0
  batches = peek_first(train_batches(config, data, position))

  # Only now is the work dir touched.
  rundir.write_config(workdir, config)
  store = state_lib.run_checkpoints(config, workdir)
  start_step = 0
  meta = state_lib.restore_latest(state, store)
  if meta is not None:
    start_step = int(meta["step"])
    if int(meta["data_position"]) != position:
      # The newest checkpoint was unreadable and an older one restored: read from its position.
      batches = train_batches(config, data, int(meta["data_position"]))
    log.info("resumed from step %d (data position %d)", start_step, int(meta["data_position"]))

  metrics_log = MetricsLog(workdir)
  if jax.process_index() == 0:
    metrics_log.write(start_step, "setup", state.param_counts())

  def save(step_now: int):
    store.save(step_now, state.checkpoint(), {"step": step_now, "data_position": step_now})

  def run_eval(step_now: int) -> Dict[str, float]:
    results = evaluate(state.model, state.variables(), data, config, p.mesh, p.spec)
    metrics_log.write(step_now, "eval", results)
    if store.best is not None:
      store.save_best(
        step_now, state.checkpoint(), {"step": step_now, "data_position": step_now}, results
      )
    if jax.process_index() == 0:
      shown = ", ".join(
        f"{k}={v:.2f}" for k, v in sorted(results.items()) if not k.endswith("num_examples")
      )
      print(f"[eval step {step_now}] {shown}", flush=True)
    return results

  with StopRequest(check_every=int(cf.require(config, "train.preemption_check_every"))) as stop:
    try:
      done = loop.run(
        config,
        workdir,
        state,
        batches,
        p.mesh,
        rng,
        start_step,
        store.latest_step(),
        save,
        run_eval,
        metrics_log,
        stop=stop,
      )
      store.close()
      size = ckpt_lib.directory_bytes(os.path.join(workdir, "checkpoints"))
      summary = {"step": done["step"], "checkpoint_bytes": size, **done["eval"]}
      metrics_log.write(done["step"], "final", summary)
    finally:
      # Also on the way out of a failure or a preemption: writers closed, files complete.
      metrics_log.close()
      store.close()
  return {
    "trainable": state.trainable,
    "opt_state": state.opt_state,
    "frozen": state.frozen,
    "metrics": summary,
    "model": state.model,
    "spec": p.spec,
  }
