"""Runs `train_and_evaluate` in a fresh process for tests that need a given device setup.

  python tests/train/train_driver.py '{"workdir": ..., "out": ..., "devices": 8,
                                       "overrides": {"sharding.mesh": [4, 2]}, ...}'

The device count (and jax.distributed, for multi-process tests) must be fixed before JAX starts,
which is why this is a separate process. It writes `out` (.npz): the per-step training losses,
the final trainable weights and optimiser state (flattened), and the sharding of the largest
frozen weight, so tests compare runs across processes.
"""

import json
import os
import sys

args = json.loads(sys.argv[1])
# Appended, so flags the test session set (conftest.py) still apply in this process.
os.environ["XLA_FLAGS"] = " ".join(
  filter(
    None,
    [
      os.environ.get("XLA_FLAGS"),
      f"--xla_force_host_platform_device_count={args.get('devices', 1)}",
    ],
  )
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import jax  # noqa: E402

dist = args.get("distributed")
if dist:
  jax.distributed.initialize(
    coordinator_address=dist["address"],
    num_processes=dist["num_processes"],
    process_id=dist["process_id"],
  )

import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402,F401

import importlib  # noqa: E402

from adalink.train import trainer  # noqa: E402
from tests.overrides import apply_overrides  # noqa: E402


def main():
  config_module = importlib.import_module(f"configs.{args.get('config', 'glue')}")
  config = config_module.get_config(args.get("variant", "smoke"))
  config.train.quiet = True
  apply_overrides(config, args.get("overrides", {}))
  from adalink import cli, errors

  try:
    result = trainer.train_and_evaluate(config, args["workdir"])
  except errors.Preempted as e:  # the status a preempted job exits with, as scripts/train.py
    with open(args["out"] + f".preempted{jax.process_index()}", "w") as f:
      f.write(str(e.step))
    sys.exit(cli.EXIT_PREEMPTED)
  except Exception as e:  # reported to the test, which asserts on the message
    with open(args["out"] + ".error", "w") as f:
      f.write(f"{type(e).__name__}: {e}")
    sys.exit(3)
  # Gathering is a collective: every process takes part; only process 0 writes.
  gather = lambda x: np.asarray(jax.experimental.multihost_utils.process_allgather(x, tiled=True))
  state = {}
  for prefix, tree in (("trainable", result["trainable"]), ("opt_state", result["opt_state"])):
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      state[prefix + jax.tree_util.keystr(path)] = gather(leaf)
  if jax.process_index() != 0:
    return
  losses = []
  with open(os.path.join(args["workdir"], "metrics.jsonl")) as f:
    for line in f:
      rec = json.loads(line)
      if rec["kind"] == "setup":
        losses = []  # every run (a resumed one too) starts with a setup record: keep this run's
      elif rec["kind"] == "train":
        losses.append((rec["step"], rec["loss"]))
  out = {"loss_steps": np.array([s for s, _ in losses]), "losses": np.array([l for _, l in losses])}
  out.update(state)
  part = result["frozen"] if "params" in result["frozen"] else result["trainable"]
  emb = part["params"]["token_embedder"]["embedding"]
  out["embedding_spec"] = np.array(str(emb.sharding.spec))
  out["embedding_shard_shape"] = np.array(emb.sharding.shard_shape(emb.shape))
  np.savez(args["out"], **out)


main()
