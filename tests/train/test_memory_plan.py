"""The memory planner: its weight and optimiser-state figures are the bytes one device really
holds when the trainer places a small model on a (4, 2) or an FSDP (2, 2, 2) mesh of 8 devices,
and a plan that cannot fit a named device says so, naming the largest item."""

import json
import os
import subprocess
import sys

import pytest

from adalink.train import memory_plan
from configs import glue as glue_configs
from tests.conftest import REPO_ROOT

# Runs with 8 fake CPU devices (a fresh process: the device count is fixed at JAX's start).
MEASURE = """
import json, os, sys
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
sys.path.insert(0, sys.argv[1])
import jax
from configs import glue
from adalink.train import memory_plan, plan as plan_lib, state as state_lib

def on_device0(tree):
  d0 = jax.devices()[0]
  return sum(
    s.data.nbytes for x in jax.tree_util.tree_leaves(tree) for s in x.addressable_shards
    if s.device == d0
  )

out = {}
CASES = (("ft", (4, 2)), ("adalink", (4, 2)), ("lora", (4, 2)), ("ft_fsdp", (2, 2, 2)),
         ("ft_scan", (2, 2, 2)))
for method, mesh in CASES:
  name = method.split("_")[0]
  config = glue.get_config("smoke,size=nano" + ("" if name == "adalink" else f",method={name}"))
  config.sharding.mesh = mesh
  config.model.scan_layers = method.endswith("_scan")
  p = plan_lib.plan(config)
  st = state_lib.init_state(p, state_lib.load_base(p), jax.random.PRNGKey(0))
  planned = memory_plan.plan_memory(config)
  out[method] = {
    "frozen": [on_device0(st.frozen), planned.per_device["frozen"]],
    "trainable": [on_device0(st.trainable), planned.per_device["trainable"]],
    "optimizer": [on_device0(st.opt_state), planned.per_device["optimizer"]],
    "whole_trainable": planned.totals["trainable"],
  }
print("RESULT " + json.dumps(out))
"""


def test_planned_bytes_are_what_each_device_holds():
  proc = subprocess.run(
    [sys.executable, "-c", MEASURE, str(REPO_ROOT)],
    capture_output=True,
    text=True,
    timeout=600,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
  result = json.loads(line[len("RESULT ") :])
  whole = {method: items.pop("whole_trainable") for method, items in result.items()}
  for method, items in result.items():
    for item, (held, planned) in items.items():
      assert held == planned, (method, item, held, planned)
  # Not vacuous: the model axis really splits the weights (FT trains all of them).
  assert 0 < result["ft"]["trainable"][0] < 0.8 * whole["ft"]
  assert result["adalink"]["trainable"][0] < 1e6 < result["adalink"]["frozen"][0]
  # FSDP splits every weight's embed dimension too: (2, 2, 2) holds about a quarter of FT's
  # weights per device, where (4, 2) holds about a half.
  assert result["ft_fsdp"]["trainable"][0] < 0.6 * result["ft"]["trainable"][0]
  # Scanned layers hold the same weights; the per-layer optimiser keeps the same statistics
  # (plus a step counter per layer: a few bytes).
  assert result["ft_scan"]["trainable"] == result["ft_fsdp"]["trainable"]
  assert 0 <= result["ft_scan"]["optimizer"][0] - result["ft_fsdp"]["optimizer"][0] < 1024


def test_remat_policies_keep_less_than_no_remat():
  acts = {}
  for policy in ("none", "dots", "full"):
    config = glue_configs.get_config("flan_adalink_r4")
    config.model.remat = policy
    plan = memory_plan.plan_memory(config, (8, 1))
    acts[policy] = plan.per_device["activations"]
    assert f"remat {policy}" in plan.description
  # FLAN-T5-XXL, 24+24 layers: keeping one input per layer and token is a small fraction.
  assert acts["full"] < acts["dots"] < acts["none"]
  assert acts["full"] < 0.25 * acts["none"], acts


def test_a_plan_that_cannot_fit_names_its_largest_item():
  config = glue_configs.get_config("flan_ft")
  plan = memory_plan.plan_memory(config, (1, 1))
  ok, _ = memory_plan.fits(plan, "tpu-v5e")
  text = memory_plan.format_plan(plan, "tpu-v5e")
  assert not ok and plan.biggest() in ("trainable", "gradients", "activations")
  assert f"does NOT fit (largest item: {plan.biggest()})" in text
  # FLAN-T5-XXL holds about 11.1B parameters: 41-42 GiB in float32, unsharded.
  assert 41 * 2**30 < plan.totals["trainable"] < 42 * 2**30
  sharded = memory_plan.plan_memory(config, (-1, 8), devices=8)
  assert sharded.per_device["trainable"] < plan.per_device["trainable"] / 7


@pytest.mark.parametrize(
  "mesh,devices,why",
  [
    ((-1, 8), None, "give the number of devices"),
    ((-1, 3), 8, "3 does not divide 8 devices"),
    ((2, 2, 1, 2), None, "mesh must be \\(data, model\\)"),
  ],
)
def test_bad_meshes_are_refused(mesh, devices, why):
  with pytest.raises(ValueError, match=why):
    memory_plan.plan_memory(glue_configs.get_config("smoke"), mesh, devices)


def test_a_mesh_that_does_not_divide_a_weight_names_it():
  # T5 1.1 small has 6 heads: a model axis of 4 cannot split them.
  with pytest.raises(
    ValueError, match="\\(heads=6\\) is not divisible by the mesh's model axis \\(4\\)"
  ):
    memory_plan.plan_memory(glue_configs.get_config("smoke,size=small"), (2, 4))


def test_unknown_device_is_refused():
  plan = memory_plan.plan_memory(glue_configs.get_config("smoke"), (1, 1))
  with pytest.raises(ValueError, match="unknown device 'h300'"):
    memory_plan.fits(plan, "h300")
