"""Run checkpoints under faults: damaged data files, no readable step, a save that fails."""

import errno
import logging
import os

import jax.numpy as jnp
import numpy as np
import pytest

from adalink.errors import CheckpointError
from adalink.train import checkpoints as ckpt_lib


def _state(value: float):
  return {"w": jnp.full((4, 3), value, jnp.float32), "b": jnp.arange(3, dtype=jnp.float32) + value}


def _abstract():
  import jax

  return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _state(0.0))


def _damage(step_dir: str) -> int:
  """Overwrites every array data file under a step directory (metadata left alone)."""
  n = 0
  for root, _, files in os.walk(os.path.join(step_dir, "state")):
    for name in files:
      path = os.path.join(root, name)
      if "d" in os.path.relpath(path, step_dir).split(os.sep)[:-1] or "ocdbt" in root:
        with open(path, "wb") as f:
          f.write(b"\x00garbage" * 8)
        n += 1
  return n


def _saved(tmp_path, steps=(1, 2)):
  store = ckpt_lib.RunCheckpoints(str(tmp_path), keep=3)
  for s in steps:
    store.save(s, _state(float(s)), {"step": s, "data_position": s})
  return store


def test_damaged_latest_falls_back_to_previous_and_is_kept_aside(tmp_path, caplog):
  store = _saved(tmp_path)
  assert _damage(os.path.join(tmp_path, "checkpoints", "2")) > 0
  store.close()
  store = ckpt_lib.RunCheckpoints(str(tmp_path), keep=3)
  with caplog.at_level(logging.WARNING, logger="adalink.train"):
    state, meta = store.restore(_abstract())
  assert meta["step"] == 1
  np.testing.assert_array_equal(np.asarray(state["w"]), np.full((4, 3), 1.0, np.float32))
  warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert len(warnings) == 1 and "\n" not in warnings[0]
  assert "step 2" in warnings[0] and "unreadable" in warnings[0]
  aside = os.path.join(tmp_path, "checkpoints_unreadable", "2")
  assert os.path.isdir(aside), "the damaged step must be moved aside, not deleted"
  assert store.latest_step() == 1
  # Training can continue: the next save lands beside step 1.
  store.save(3, _state(3.0), {"step": 3, "data_position": 3})
  assert store.restore(_abstract())[1]["step"] == 3
  store.close()


def test_no_readable_checkpoint_is_one_clear_error(tmp_path):
  store = _saved(tmp_path)
  for s in (1, 2):
    _damage(os.path.join(tmp_path, "checkpoints", str(s)))
  store.close()
  store = ckpt_lib.RunCheckpoints(str(tmp_path), keep=3)
  with pytest.raises(CheckpointError, match="no readable latest checkpoint") as info:
    store.restore(_abstract())
  assert "\n" not in str(info.value) and "new --workdir" in str(info.value)
  assert sorted(os.listdir(os.path.join(tmp_path, "checkpoints_unreadable"))) == ["1", "2"]


def test_failed_save_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
  store = _saved(tmp_path, steps=(1,))
  from etils import epath

  real_write_text = epath.Path.write_text

  def full_disk(self, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(self))

  monkeypatch.setattr(epath.Path, "write_text", full_disk)
  with pytest.raises(CheckpointError) as info:
    store.save(2, _state(2.0), {"step": 2, "data_position": 2})
  message = str(info.value)
  assert "\n" not in message
  assert "no space left" in message and os.path.join(str(tmp_path), "checkpoints") in message
  assert f"{ckpt_lib.state_bytes(_state(2.0)):,} bytes" in message
  assert "previous checkpoint (step 1) is intact" in message
  monkeypatch.setattr(epath.Path, "write_text", real_write_text)
  leftovers = [n for n in os.listdir(os.path.join(tmp_path, "checkpoints")) if n.startswith("2")]
  assert leftovers == []
  assert store.latest_step() == 1
  assert store.restore(_abstract())[1]["step"] == 1
  # Space freed: the same save now works and resuming finds it.
  store.save(2, _state(2.0), {"step": 2, "data_position": 2})
  assert store.restore(_abstract())[1]["step"] == 2
  store.close()


def _unraisable_from(call):
  import types

  try:
    call()
  except Exception as e:  # noqa: BLE001 - the exception is the material of the test
    return types.SimpleNamespace(
      exc_type=type(e), exc_value=e, exc_traceback=e.__traceback__, err_msg=None, object=None
    )
  raise AssertionError("call did not raise")


def test_only_the_aborted_restores_leftover_callback_is_dropped(monkeypatch):
  """A failed restore leaves tensorstore callbacks aimed at orbax's closed event loop; their
  "Event loop is closed" traceback is dropped, every other unraisable error still reaches the
  previous hook."""
  import asyncio
  import sys

  seen = []
  monkeypatch.setattr(sys, "unraisablehook", seen.append)
  ckpt_lib._silence_orphaned_read_callbacks()
  ckpt_lib._silence_orphaned_read_callbacks()  # installing twice must not stack two filters
  loop = asyncio.new_event_loop()
  loop.close()
  leftover = _unraisable_from(lambda: loop.call_soon_threadsafe(lambda: None))
  sys.unraisablehook(leftover)
  assert seen == []

  def other():
    raise RuntimeError("Event loop is closed")  # same text, not from a loop callback

  for unraisable in (_unraisable_from(other), _unraisable_from(lambda: 1 / 0)):
    sys.unraisablehook(unraisable)
  assert [type(u.exc_value) for u in seen] == [RuntimeError, ZeroDivisionError]
