"""train_and_evaluate end to end: smoke run, sharding, multi-host, resume after SIGKILL, bad input.

Runs that need their own device setup go through `train_driver.py` in a subprocess. A single
100-step reference run serves the sharding, multi-host and resume comparisons (they compare
against its first 20 / first 10 / all 100 steps).
"""

import json
import signal
import socket
import subprocess
import time

import jax.numpy as jnp
import numpy as np
import pytest

from adalink.train import checkpoints as ckpt_lib
from adalink.train import trainer
from configs import glue as glue_configs
from tests.train.saved_batches import save_train_batches
from tests.overrides import apply_overrides
from tests.train.train_driver_cmd import driver_command

# Shared by every driver run: per-step losses, no decoding (it is tested elsewhere).
COMMON = {
  "train.log_every": 1,
  "eval.enabled": False,
  "train.num_steps": 100,
  "train.checkpoint_every": 100,
  "data.batch_size": 8,
  "data.host_split": "slice",
}


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
  """The smoke config's first 100 batches, saved: the driver runs read them without TensorFlow."""
  config = _smoke(**COMMON)
  return save_train_batches(
    config, str(tmp_path_factory.mktemp("batches")), COMMON["train.num_steps"]
  )


def _driver_cmd(batches, workdir, out, overrides, devices=1, distributed=None):
  return driver_command(workdir, out, {**COMMON, **batches, **overrides}, devices, distributed)


def _run(batches, tmp_path, name, overrides, devices=1, expect_error=False):
  workdir, out = tmp_path / name, tmp_path / f"{name}.npz"
  proc = subprocess.run(
    _driver_cmd(batches, workdir, out, overrides, devices),
    capture_output=True,
    text=True,
    timeout=600,
  )
  if expect_error:
    assert proc.returncode == 3, proc.stderr[-3000:]
    return (tmp_path / f"{name}.npz.error").read_text(), workdir
  assert proc.returncode == 0, proc.stderr[-3000:]
  return dict(np.load(out))


@pytest.fixture(scope="module")
def reference(batches, tmp_path_factory):
  """100 steps on one device."""
  return _run(batches, tmp_path_factory.mktemp("ref"), "ref", {})


def _state_keys(run):
  return [k for k in run if k.startswith(("trainable", "opt_state"))]


def test_sharded_run_matches_single_device(batches, reference, tmp_path):
  sharded = _run(
    batches, tmp_path, "mesh4x2", {"sharding.mesh": [4, 2], "train.num_steps": 20}, devices=8
  )
  np.testing.assert_array_equal(sharded["loss_steps"], np.arange(1, 21))
  rel = np.abs(sharded["losses"] - reference["losses"][:20]) / np.abs(reference["losses"][:20])
  assert rel.max() <= 1e-5, rel.max()
  # The vocabulary table really is split over the model axis: each device holds half the rows.
  assert "model" in str(sharded["embedding_spec"])
  assert tuple(sharded["embedding_shard_shape"]) == (384 // 2, 32)


def test_fsdp_runs_match_single_device_and_hold_a_shard_of_the_weights(
  batches, reference, tmp_path
):
  """(data, fsdp, model) meshes: the batch over data x fsdp, every weight also split along its
  embed dimension over fsdp. Pure FSDP over 8 devices holds 1/8 of the table per device. The
  (2, 2, 2) run also scans its layers with full remat: the same losses as the unrolled reference."""
  scanned = {"model.scan_layers": True, "model.remat": "full"}
  for mesh, shard, extra in (
    ([1, 8, 1], (384, 32 // 8), {}),
    ([2, 2, 2], (384 // 2, 32 // 2), scanned),
  ):
    name = "fsdp" + "x".join(map(str, mesh))
    overrides = {"sharding.mesh": mesh, "train.num_steps": 10, **extra}
    run = _run(batches, tmp_path, name, overrides, devices=8)
    rel = np.abs(run["losses"] - reference["losses"][:10]) / np.abs(reference["losses"][:10])
    assert len(run["losses"]) == 10 and rel.max() <= 1e-5, (mesh, rel.max())
    assert "fsdp" in str(run["embedding_spec"])
    assert tuple(run["embedding_shard_shape"]) == shard


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_agree_with_one(batches, reference, tmp_path):
  address = f"127.0.0.1:{_free_port()}"
  procs = []
  for pid in range(2):
    dist = {"address": address, "num_processes": 2, "process_id": pid}
    procs.append(
      subprocess.Popen(
        _driver_cmd(
          batches, tmp_path / "mh", tmp_path / "mh.npz", {"train.num_steps": 10}, distributed=dist
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
      )
    )
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
  run = dict(np.load(tmp_path / "mh.npz"))
  rel = np.abs(run["losses"] - reference["losses"][:10]) / np.abs(reference["losses"][:10])
  assert rel.max() <= 1e-5, rel.max()


def test_resume_after_sigkill_matches_straight_run(batches, reference, tmp_path):
  workdir, out = tmp_path / "resume", tmp_path / "resume.npz"
  overrides = {"train.checkpoint_every": 50}
  child = subprocess.Popen(
    _driver_cmd(batches, workdir, out, overrides),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )
  step50 = workdir / "checkpoints" / "50"
  deadline = time.time() + 300
  while not step50.exists() and child.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  finished_early = child.poll()
  child.send_signal(signal.SIGKILL)
  _, err = child.communicate()
  assert step50.exists(), (
    f"the first run never wrote its step-50 checkpoint (exit code {finished_early}):\n{err[-3000:]}"
  )
  assert not (workdir / "checkpoints" / "100").exists(), "killed too late to test resuming"
  # Restart: picks up step 50 and its data position by itself.
  proc = subprocess.run(
    _driver_cmd(batches, workdir, out, overrides), capture_output=True, text=True, timeout=600
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  resumed = dict(np.load(out))
  assert resumed["loss_steps"].min() == 51
  keys = _state_keys(reference)
  assert keys and keys == _state_keys(resumed)
  worst = max(float(np.max(np.abs(reference[k] - resumed[k]))) for k in keys)
  assert worst <= 1e-6, worst


def _smoke(**overrides):
  config = glue_configs.get_config("smoke")
  config.train.quiet = True
  return apply_overrides(config, overrides)


def test_smoke_trains_and_evaluates(tmp_path):
  config = _smoke(
    **{
      "train.num_steps": 60,
      "train.log_every": 10,
      "train.checkpoint_every": 30,
      "eval.every_steps": 0,
      "eval.max_examples": 16,
    }
  )
  result = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  metrics = result["metrics"]
  assert metrics["step"] == 60
  assert 0.0 <= metrics["sst2/accuracy"] <= 100.0 and metrics["sst2/num_examples"] == 16
  records = [json.loads(l) for l in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in records if r["kind"] == "train"]
  assert len(losses) == 6 and losses[-1] < losses[0]
  assert (tmp_path / "w" / "checkpoints" / "60").is_dir()
  assert (tmp_path / "w" / "best").is_dir()


def test_checkpoint_of_adalink_on_base_size_holds_only_adapters(tmp_path):
  config = _smoke(
    **{
      "train.num_steps": 1,
      "train.checkpoint_every": 1,
      "eval.enabled": False,
      "data.batch_size": 2,
      "data.inputs_length": 16,
      "data.targets_length": 8,
    }
  )
  config.model.size = "base"
  config.method.rank = 4
  result = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  base_bytes = sum(
    x.size * x.dtype.itemsize for x in __import__("jax").tree_util.tree_leaves(result["frozen"])
  )
  ckpt_bytes = ckpt_lib.directory_bytes(str(tmp_path / "w" / "checkpoints"))
  assert base_bytes > 900e6  # really a T5-base-sized model (247.6M float32 parameters)
  assert ckpt_bytes < 0.01 * base_bytes, (ckpt_bytes, base_bytes)


def test_unknown_variant_is_refused():
  with pytest.raises(ValueError, match="unknown variant 'flan_adapter_r4'"):
    glue_configs.get_config("flan_adapter_r4")
  with pytest.raises(ValueError, match="method 'ft' takes no rank"):
    glue_configs.get_config("t5_ft_r4")


@pytest.mark.parametrize(
  "overrides, error, message",
  [
    (
      {"model.init": "checkpoint", "model.checkpoint": ""},
      ValueError,
      "config.model.checkpoint is empty",
    ),
    (
      {"model.init": "checkpoint", "model.checkpoint": "/no/such/ckpt"},
      FileNotFoundError,
      "config.model.checkpoint: no such file or directory: /no/such/ckpt",
    ),
    ({"sharding.mesh": (2, 1)}, ValueError, r"sharding.mesh \(2, 1\) needs 2 devices, but 1 are"),
    ({"data.data_dir": "/no/such/glue"}, FileNotFoundError, "config.data.data_dir"),
    ({"model.size": "huge"}, ValueError, "unknown T5 size 'huge'"),
  ],
)
def test_bad_input_fails_before_the_workdir_is_touched(tmp_path, overrides, error, message):
  workdir = tmp_path / "never"
  with pytest.raises(error, match=message):
    trainer.train_and_evaluate(_smoke(**overrides), str(workdir))
  assert not workdir.exists()


def test_batch_not_divisible_by_data_axis(tmp_path):
  message, workdir = _run(
    {},  # refused by the plan, before any data is read
    tmp_path,
    "bad_batch",
    {"sharding.mesh": [4, 2], "data.batch_size": 6},
    devices=8,
    expect_error=True,
  )
  assert "config.data.batch_size=6 is not divisible by the mesh's data axis (4)" in message
  assert not workdir.exists()


def test_resume_with_another_method_is_refused_and_keeps_the_run(tmp_path):
  workdir = tmp_path / "w"
  config = _smoke(**{"train.num_steps": 2, "train.checkpoint_every": 2, "eval.enabled": False})
  trainer.train_and_evaluate(config, str(workdir))
  before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*")}
  other = _smoke(**{"train.num_steps": 4, "eval.enabled": False})
  other.method.rank = 2
  with pytest.raises(ValueError, match="different config.method"):
    trainer.train_and_evaluate(other, str(workdir))
  assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*")} == before


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  workdir = tmp_path / "w"
  good = _smoke(**{"train.num_steps": 2, "train.checkpoint_every": 2, "eval.enabled": False})
  trainer.train_and_evaluate(good, str(workdir))
  saved = {p: p.read_bytes() for p in (workdir / "checkpoints" / "2").rglob("*") if p.is_file()}
  # From here on every loss is NaN (as a diverging run's would be).
  from adalink.train import step as step_lib

  real = step_lib.cross_entropy
  monkeypatch.setattr(
    step_lib, "cross_entropy", lambda *a, **k: tuple(x * jnp.nan for x in real(*a, **k))
  )
  bad = _smoke(
    **{
      "train.num_steps": 6,
      "train.checkpoint_every": 2,
      "train.log_every": 1,
      "eval.enabled": False,
    }
  )
  with pytest.raises(
    FloatingPointError, match="non-finite training loss at step 3.*last good checkpoint is step 2"
  ):
    trainer.train_and_evaluate(bad, str(workdir))
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["2"]
  assert {
    p: p.read_bytes() for p in (workdir / "checkpoints" / "2").rglob("*") if p.is_file()
  } == saved


def test_rerunning_a_finished_run_is_a_no_op(tmp_path):
  config = _smoke(**{"train.num_steps": 2, "train.checkpoint_every": 2, "eval.max_examples": 8})
  first = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  again = trainer.train_and_evaluate(config, str(tmp_path / "w"))
  assert again["metrics"]["step"] == 2
  assert again["metrics"]["sst2/accuracy"] == first["metrics"]["sst2/accuracy"]
