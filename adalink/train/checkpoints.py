"""Run checkpoints: trainable weights, optimiser state, step and data position, via orbax.

Only what training changes is saved. The frozen base is not: it is reloaded from the checkpoint
(or seed) the config names, so an AdaLink run on a large model leaves a directory the size of its
adapters. Orbax writes each step into a temporary directory and renames it when complete, so a
run killed mid-save leaves the previous checkpoint as the latest usable one.

Two managers share a run directory: `checkpoints/` keeps the last K steps (for resuming) and
`best/` keeps the single best step by the configured eval metric.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Tuple

import jax
import orbax.checkpoint as ocp


def _manager(
  directory: str, keep: int, best_metric: Optional[str] = None, best_mode: str = "max"
) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep,
    create=True,
    enable_async_checkpointing=False,
    best_fn=(lambda m: m[best_metric]) if best_metric else None,
    best_mode=best_mode,
  )
  return ocp.CheckpointManager(
    os.path.abspath(directory), options=options, item_names=("state", "meta")
  )


class RunCheckpoints:
  """`save` / `restore_latest` for resuming, `save_best` for the eval-selected checkpoint."""

  def __init__(
    self, workdir: str, keep: int = 2, best_metric: Optional[str] = None, best_mode: str = "max"
  ):
    if keep < 1:
      raise ValueError(f"checkpoint.keep must be >= 1, got {keep}")
    self.latest = _manager(os.path.join(workdir, "checkpoints"), keep)
    self.best_metric = best_metric
    self.best = (
      _manager(os.path.join(workdir, "best"), 1, best_metric, best_mode) if best_metric else None
    )

  @staticmethod
  def _args(state, meta):
    return ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))

  def save(self, step: int, state: Mapping[str, Any], meta: Dict[str, Any]):
    if step in self.latest.all_steps():
      return  # a finished run re-run in its own directory: that step is already on disk
    self.latest.save(step, args=self._args(dict(state), meta), force=True)
    self.latest.wait_until_finished()

  def save_best(
    self, step: int, state: Mapping[str, Any], meta: Dict[str, Any], metrics: Mapping[str, float]
  ):
    if self.best is None or step in self.best.all_steps():
      return
    if self.best_metric not in metrics:
      raise KeyError(
        f"eval.best_metric {self.best_metric!r} is not among the eval metrics {sorted(metrics)}"
      )
    self.best.save(step, args=self._args(dict(state), meta), metrics=dict(metrics), force=True)
    self.best.wait_until_finished()

  def latest_step(self) -> Optional[int]:
    return self.latest.latest_step()

  def restore(
    self, abstract_state: Mapping[str, Any], step: Optional[int] = None, which: str = "latest"
  ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(state, meta) at `step` (default: the newest) restored into `abstract_state`'s structure,
    dtypes and shardings (ShapeDtypeStructs with `.sharding`)."""
    mngr = self.latest if which == "latest" else self.best
    if mngr is None:
      raise ValueError("no best-checkpoint manager: eval.best_metric is not set")
    if step is None:
      step = mngr.latest_step() if which == "latest" else mngr.best_step()
    if step is None:
      raise FileNotFoundError(f"no {which} checkpoint under {mngr.directory}")
    restored = mngr.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(dict(abstract_state)), meta=ocp.args.JsonRestore()
      ),
    )
    # Orbax hands back containers as plain tuples/dicts; put the leaves back into the exact
    # structure (optax named tuples included) the step function was compiled for.
    treedef = jax.tree_util.tree_structure(dict(abstract_state))
    state = jax.tree_util.tree_unflatten(treedef, jax.tree_util.tree_leaves(restored.state))
    return state, dict(restored.meta)

  def close(self):
    self.latest.close()
    if self.best is not None:
      self.best.close()


def directory_bytes(path: str) -> int:
  total = 0
  for root, _, files in os.walk(path):
    for f in files:
      total += os.path.getsize(os.path.join(root, f))
  return total
