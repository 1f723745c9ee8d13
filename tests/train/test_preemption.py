"""SIGTERM mid-run (a preemptible VM being taken away): the job finishes its step, saves it and
exits with the preemption status; the restart ends bitwise where an uninterrupted run ends. The
same with two processes on localhost, where only one of them gets the signal."""

import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from adalink import cli
from configs import glue as glue_configs
from tests.train.saved_batches import save_train_batches
from tests.overrides import apply_overrides
from tests.train.train_driver_cmd import driver_command

STEPS = 40
COMMON = {
  "train.log_every": 1,
  "eval.enabled": False,
  "train.num_steps": STEPS,
  "train.checkpoint_every": STEPS,  # no periodic checkpoint: the preemption save is the only one
  "data.batch_size": 8,
  "data.host_split": "slice",
}


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
  """The smoke config's first STEPS batches, saved: the runs below read them without TensorFlow."""
  config = glue_configs.get_config("smoke")
  apply_overrides(config, COMMON)
  return save_train_batches(config, str(tmp_path_factory.mktemp("batches")), STEPS)


def _cmd(batches, workdir, out, distributed=None):
  return driver_command(workdir, out, {**COMMON, **batches}, 1, distributed)


def _state(run):
  return {k: v for k, v in run.items() if k.startswith(("trainable", "opt_state"))}


@pytest.fixture(scope="module")
def straight(batches, tmp_path_factory):
  tmp = tmp_path_factory.mktemp("straight")
  proc = subprocess.run(
    _cmd(batches, tmp / "w", tmp / "out.npz"), capture_output=True, text=True, timeout=600
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return dict(np.load(tmp / "out.npz"))


def _trained_steps(workdir) -> int:
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return 0
  return sum('"kind": "train"' in line for line in path.read_text().splitlines())


def _wait_for_steps(procs, workdir, n, timeout=300):
  deadline = time.time() + timeout
  while _trained_steps(workdir) < n and time.time() < deadline:
    if any(p.poll() is not None for p in procs):
      break
    time.sleep(0.05)


def _assert_same_state(a, b):
  keys = sorted(_state(a))
  assert keys and keys == sorted(_state(b))
  worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in keys)
  assert worst == 0.0, worst


def test_sigterm_saves_the_step_and_the_restart_matches_a_straight_run(batches, straight, tmp_path):
  workdir, out = tmp_path / "w", tmp_path / "out.npz"
  child = subprocess.Popen(
    _cmd(batches, workdir, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
  )
  _wait_for_steps([child], workdir, 5)
  child.send_signal(signal.SIGTERM)
  _, err = child.communicate(timeout=300)
  assert child.returncode == cli.EXIT_PREEMPTED, err[-3000:]
  saved = int((tmp_path / "out.npz.preempted0").read_text())
  assert 5 <= saved < STEPS
  assert (workdir / "checkpoints" / str(saved)).is_dir()
  assert _trained_steps(workdir) == saved, "every finished step is logged before stopping"
  proc = subprocess.run(_cmd(batches, workdir, out), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  resumed = dict(np.load(out))
  assert resumed["loss_steps"].min() == saved + 1
  _assert_same_state(straight, resumed)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _two_processes(batches, workdir, out):
  address = f"127.0.0.1:{_free_port()}"
  return [
    subprocess.Popen(
      _cmd(batches, workdir, out, {"address": address, "num_processes": 2, "process_id": pid}),
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
    )
    for pid in range(2)
  ]


@pytest.fixture(scope="module")
def straight_two_processes(batches, tmp_path_factory):
  """The uninterrupted run on two processes (its sums split over hosts differ from one process's
  in the last bits, so a two-process restart is compared with this one)."""
  tmp = tmp_path_factory.mktemp("straight2")
  procs = _two_processes(batches, tmp / "w", tmp / "out.npz")
  errs = [p.communicate(timeout=600)[1] for p in procs]
  for p, err in zip(procs, errs):
    assert p.returncode == 0, err[-3000:]
  return dict(np.load(tmp / "out.npz"))


def test_two_processes_stop_at_the_same_step_when_one_is_signalled(
  batches, straight_two_processes, tmp_path
):
  workdir, out = tmp_path / "w", tmp_path / "out.npz"
  procs = _two_processes(batches, workdir, out)
  _wait_for_steps(procs, workdir, 5)
  procs[1].send_signal(signal.SIGTERM)  # only the second host is told
  errs = [p.communicate(timeout=300)[1] for p in procs]
  for p, err in zip(procs, errs):
    assert p.returncode == cli.EXIT_PREEMPTED, err[-3000:]
  steps = [int((tmp_path / f"out.npz.preempted{i}").read_text()) for i in range(2)]
  assert steps[0] == steps[1] and steps[0] < STEPS, steps
  assert (workdir / "checkpoints" / str(steps[0])).is_dir()
  procs = _two_processes(batches, workdir, out)
  errs = [p.communicate(timeout=600)[1] for p in procs]
  for p, err in zip(procs, errs):
    assert p.returncode == 0, err[-3000:]
  resumed = dict(np.load(out))
  assert resumed["loss_steps"].min() == steps[0] + 1
  _assert_same_state(straight_two_processes, resumed)
