"""Run checkpoints: trainable weights, optimiser state, step and data position, via orbax.

Only what training changes is saved. The frozen base is not: it is reloaded from the checkpoint
(or seed) the config names, so an AdaLink run on a large model leaves a directory the size of its
adapters. Orbax writes each step into a temporary directory and renames it when complete, so a
run killed mid-save leaves the previous checkpoint as the latest usable one.

Two managers share a run directory: `checkpoints/` keeps the last K steps (for resuming) and
`best/` keeps the single best step by the configured eval metric.

Faults (see the README's "Faults" section):
  * a checkpoint that cannot be read (damaged or missing data files) is reported in one warning
    line naming its step and the reason, moved aside into `<dir>_unreadable/<step>` (never
    deleted) and the next newest one is used; if none is readable, a `CheckpointError` says so;
  * a save that fails (no space left, no permission) raises a one-line `CheckpointError` naming
    the directory and the bytes it needed; the partial step is removed, so the previous
    checkpoint stays the newest one on disk.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sys
import traceback
from typing import Any, Dict, Mapping, Optional, Tuple

import jax
import orbax.checkpoint as ocp

from adalink.errors import CheckpointError

log = logging.getLogger("adalink.train")


def _one_line(exc: BaseException, limit: int = 300) -> str:
  text = " ".join(str(exc).split()) or type(exc).__name__
  return text if len(text) <= limit else text[: limit - 3] + "..."


def state_bytes(tree) -> int:
  """Bytes of the arrays in `tree` (what a checkpoint of it needs on disk, before compression)."""
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree)))


def _is_orphaned_read_callback(unraisable) -> bool:
  """True for the one known-harmless leftover of an aborted restore (see below)."""
  exc = unraisable.exc_value
  if not (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"):
    return False
  frames = traceback.extract_tb(unraisable.exc_traceback) if unraisable.exc_traceback else []
  return any(frame.name == "call_soon_threadsafe" for frame in frames)


def _silence_orphaned_read_callbacks() -> None:
  """After a restore fails on a damaged file, orbax has already closed the asyncio loop that its
  other in-flight tensorstore reads report to; when those reads finish, their callbacks hit the
  closed loop and Python prints a traceback ("Event loop is closed") that is not an error of the
  run. The failure itself is reported in one line, so only that leftover is dropped here; any
  other unraisable exception still reaches the previous hook."""
  previous = sys.unraisablehook
  if getattr(previous, "adalink_orphaned_read_filter", False):
    return

  def hook(unraisable):
    if _is_orphaned_read_callback(unraisable):
      log.debug(
        "dropped a read callback of an aborted checkpoint restore: %s", unraisable.exc_value
      )
      return
    previous(unraisable)

  hook.adalink_orphaned_read_filter = True
  sys.unraisablehook = hook


def _move_aside(directory: str, step: int) -> str:
  """Moves `directory/<step>` to `directory_unreadable/<step>[.n]` and returns the new path."""
  src = os.path.join(directory, str(step))
  parent = directory.rstrip(os.sep) + "_unreadable"
  os.makedirs(parent, exist_ok=True)
  dst, n = os.path.join(parent, str(step)), 1
  while os.path.exists(dst):
    dst, n = os.path.join(parent, f"{step}.{n}"), n + 1
  os.replace(src, dst)
  return dst


def _remove_partial(directory: str, step: int) -> None:
  """Removes what a failed save of `step` left behind (orbax's temporary directory)."""
  if not os.path.isdir(directory):
    return
  for name in os.listdir(directory):
    if name.startswith(f"{step}.orbax-checkpoint-tmp") or name == str(step):
      shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


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
    self._save(self.latest, step, state, meta)

  def _save(self, mngr, step, state, meta, **kwargs):
    try:
      mngr.save(step, args=self._args(dict(state), meta), force=True, **kwargs)
      mngr.wait_until_finished()
    except Exception as e:
      oserror = next((x for x in (e, e.__cause__, e.__context__) if isinstance(x, OSError)), None)
      if oserror is None and not isinstance(e, OSError):
        raise
      _remove_partial(str(mngr.directory), step)
      mngr.reload()
      needed = state_bytes(state)
      free = shutil.disk_usage(str(mngr.directory)).free
      why = (
        "no space left on the device"
        if oserror is not None and oserror.errno == errno.ENOSPC
        else _one_line(oserror or e)
      )
      previous = mngr.latest_step()
      raise CheckpointError(
        f"could not save checkpoint step {step} in {mngr.directory}: {why} (it needs about "
        f"{needed:,} bytes; {free:,} free). "
        + (
          f"The previous checkpoint (step {previous}) is intact; free space and run again to "
          f"resume from it."
          if previous is not None
          else "No earlier checkpoint exists; free space and run again."
        )
      ) from e

  def save_best(
    self, step: int, state: Mapping[str, Any], meta: Dict[str, Any], metrics: Mapping[str, float]
  ):
    if self.best is None or step in self.best.all_steps():
      return
    if self.best_metric not in metrics:
      raise KeyError(
        f"eval.best_metric {self.best_metric!r} is not among the eval metrics {sorted(metrics)}"
      )
    self._save(self.best, step, state, meta, metrics=dict(metrics))

  def latest_step(self) -> Optional[int]:
    return self.latest.latest_step()

  def restore(
    self, abstract_state: Mapping[str, Any], step: Optional[int] = None, which: str = "latest"
  ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(state, meta) at `step` (default: the newest readable one) restored into
    `abstract_state`'s structure, dtypes and shardings (ShapeDtypeStructs with `.sharding`).

    Without `step`, an unreadable checkpoint is moved aside with a one-line warning and the next
    newest is tried; an explicit `step` that cannot be read raises `CheckpointError`.
    """
    mngr = self.latest if which == "latest" else self.best
    if mngr is None:
      raise ValueError("no best-checkpoint manager: eval.best_metric is not set")
    # Installed before the first read, not after a failure: the other in-flight reads of a
    # damaged checkpoint can report to the closed loop while the failure is still propagating.
    _silence_orphaned_read_callbacks()
    directory = str(mngr.directory)
    if step is not None:
      if step not in mngr.all_steps():
        raise FileNotFoundError(
          f"no {which} checkpoint at step {step} under {directory} (steps: {mngr.all_steps()})"
        )
      try:
        return self._restore_step(mngr, step, abstract_state)
      except Exception as e:
        raise CheckpointError(
          f"{which} checkpoint step {step} in {directory} is unreadable: {_one_line(e)}"
        ) from e
    moved = []
    while True:
      step = mngr.latest_step() if which == "latest" else mngr.best_step()
      if step is None:
        break
      try:
        return self._restore_step(mngr, step, abstract_state)
      except Exception as e:
        reason = _one_line(e)
        aside = _move_aside(directory, step)
        moved.append(aside)
        mngr.reload()
        log.warning(
          "checkpoint step %d in %s is unreadable (%s); moved it to %s and trying the previous one",
          step,
          directory,
          reason,
          aside,
        )
    if moved:
      raise CheckpointError(
        f"no readable {which} checkpoint under {directory}: the unreadable ones were moved to "
        f"{os.path.dirname(moved[0])}. Train from scratch in a new --workdir"
        + (", or evaluate --which latest" if which == "best" else "")
      )
    raise FileNotFoundError(f"no {which} checkpoint under {directory}")

  @staticmethod
  def _restore_step(mngr, step: int, abstract_state: Mapping[str, Any]):
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


def latest_step_on_disk(workdir: str) -> Optional[int]:
  """The newest finished step in `workdir/checkpoints`, read from the directory names alone
  (orbax names a finished step by its number; unfinished ones carry a suffix); None if none.
  Creates nothing, unlike opening a `RunCheckpoints`."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return None
  steps = [int(name) for name in os.listdir(directory) if name.isdigit()]
  return max(steps) if steps else None


def directory_bytes(path: str) -> int:
  total = 0
  for root, _, files in os.walk(path):
    for f in files:
      total += os.path.getsize(os.path.join(root, f))
  return total
