"""The training loop: steps, logging windows, checkpoints and periodic evaluation.

Losses are fetched from the device once per logging window, not every step. A non-finite loss
stops the run before anything computed from it is saved, naming the first bad step and the last
good checkpoint.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import jax
import numpy as np

from adalink import config_fields as cf
from adalink.errors import Preempted
from adalink.train import partitioning
from adalink.train.metrics_log import MetricsLog
from adalink.train.preemption import StopRequest
from adalink.train.state import TrainState


def _check_finite(host: List[Dict[str, Any]], step: int, last_good, workdir: str) -> List[float]:
  losses = [float(x["loss"]) for x in host]
  if not all(math.isfinite(v) for v in losses):
    first_bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
    bad = step - len(host) + first_bad + 1
    raise FloatingPointError(
      f"non-finite training loss at step {bad}; stopped without saving it. The last "
      f"good checkpoint is step {last_good} in {os.path.join(workdir, 'checkpoints')}"
    )
  return losses


def _window_metrics(host, losses, state: TrainState, step: int, steps: int, elapsed: float):
  weight = sum(float(x["weight_sum"]) for x in host)
  return {
    "loss": float(np.mean(losses)),
    "token_accuracy": sum(float(x["correct"]) for x in host) / max(weight, 1.0),
    "grad_norm": float(host[-1]["grad_norm"]),
    "learning_rate": float(state.schedule(step)),
    "steps_per_second": steps / max(elapsed, 1e-9),
  }


def run(
  config,
  workdir: str,
  state: TrainState,
  batches: Iterator[Dict[str, np.ndarray]],
  mesh,
  rng,
  start_step: int,
  last_good,
  save: Callable[[int], None],
  run_eval: Callable[[int], Dict[str, float]],
  metrics_log: MetricsLog,
  stop: Optional[StopRequest] = None,
) -> Dict[str, Any]:
  """Trains from `start_step` to `train.num_steps`; -> {"step", "eval"} (the last eval results,
  empty when no evaluation ran).

  With `stop`, a SIGTERM/SIGINT (or a request from another process) ends the loop after the
  current step: that step is logged and checkpointed, then `Preempted` is raised."""
  num_steps = cf.positive_int(config, "train.num_steps")
  log_every = cf.positive_int(config, "train.log_every")
  ckpt_every = cf.positive_int(config, "train.checkpoint_every")
  eval_enabled = bool(cf.require(config, "eval.enabled"))
  eval_every = int(cf.require(config, "eval.every_steps") or 0) if eval_enabled else 0
  progress = None
  if jax.process_index() == 0 and not cf.require(config, "train.quiet"):
    from tqdm import tqdm

    progress = tqdm(total=num_steps, initial=start_step, unit="step", dynamic_ncols=True)
  window: List[Dict[str, Any]] = []
  eval_results: Dict[str, float] = {}
  step = start_step
  if eval_enabled and cf.require(config, "eval.at_start") and start_step == 0:
    run_eval(0)  # the untrained starting point, so a curve shows what training changed
  t0, steps_in_window = time.time(), 0
  try:
    while step < num_steps:
      batch = partitioning.global_batch(next(batches), mesh)
      step_rng = jax.random.fold_in(jax.random.fold_in(rng, 2), step)
      state.trainable, state.opt_state, m = state.train_step(
        state.trainable, state.opt_state, state.frozen, batch, step_rng
      )
      step += 1
      steps_in_window += 1
      window.append(m)
      if progress is not None:
        progress.update(1)
      if step % log_every == 0 or step % ckpt_every == 0 or step == num_steps:
        host = jax.device_get(window)
        losses = _check_finite(host, step, last_good, workdir)
        if step % log_every == 0 or step == num_steps:
          values = _window_metrics(host, losses, state, step, steps_in_window, time.time() - t0)
          metrics_log.write(step, "train", values)
          if progress is not None:
            progress.set_postfix(loss=f"{values['loss']:.4f}")
          t0, steps_in_window = time.time(), 0
        window = []
        if step % ckpt_every == 0 or step == num_steps:
          save(step)
          last_good = step
      if stop is not None and step < num_steps and stop.should_stop(step):
        if window:
          host = jax.device_get(window)
          losses = _check_finite(host, step, last_good, workdir)
          values = _window_metrics(host, losses, state, step, steps_in_window, time.time() - t0)
          metrics_log.write(step, "train", values)
        save(step)
        metrics_log.write(step, "preempted", {"checkpoint_step": step})
        raise Preempted(step, os.path.join(workdir, "checkpoints"), stop.signal_name)
      if eval_every and (step % eval_every == 0 or step == num_steps):
        eval_results = run_eval(step)
  finally:
    if progress is not None:
      progress.close()
  if eval_enabled and (eval_every == 0 or step == start_step):
    eval_results = run_eval(step)
  return {"step": step, "eval": eval_results}
