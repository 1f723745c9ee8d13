"""Will a run fit? Per-device memory of a training config, from shapes and shardings alone.

`plan_memory(config, mesh_shape)` builds the config's model abstractly (nothing is allocated, so
an 11B model plans in seconds on a laptop), places every variable by its logical axes with the
partitioning rules on a mesh of the given shape (no devices needed: a dimension is split over the
mesh axis its logical name maps to, as the trainer's shardings are; a dimension that axis does not
divide is refused, naming the variable), and sums per device:

  frozen       base weights that do not train (every method but FT);
  trainable    the weights the optimiser updates;
  gradients    one per trainable weight, float32, placed like it;
  optimizer    the optimiser's state (`jax.eval_shape` of its init), placed like its parameter
               where it has the parameter's shape, replicated otherwise (factored statistics);
  activations  an estimate of what the backward pass keeps for one step's batch on one device
               (the model family's `activation_bytes`: a formula, not a measurement).

`fits(plan, device)` compares the total with a named device's memory.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import jax
import numpy as np
import flax.linen as nn

from adalink import config_fields as cf
from adalink.train import partitioning
from adalink.train import plan as plan_lib

# Usable memory per device, bytes (the accelerator's HBM as its vendor states it).
DEVICES: Dict[str, int] = {
  "h100-80g": 80 * 10**9,
  "h200-141g": 141 * 10**9,
  "a100-40g": 40 * 10**9,
  "a100-80g": 80 * 10**9,
  "tpu-v4": 32 * 2**30,
  "tpu-v5e": 16 * 2**30,
  "tpu-v5p": 95 * 2**30,
}
ITEMS = ("frozen", "trainable", "gradients", "optimizer", "activations")


@dataclasses.dataclass
class MemoryPlan:
  """Bytes per device of each item, and what they were computed for."""

  mesh: Tuple[int, ...]
  per_device: Dict[str, int]
  totals: Dict[str, int]  # the same items summed over the whole model (unsharded)
  batch_per_device: int
  description: str

  @property
  def total(self) -> int:
    return int(sum(self.per_device.values()))

  def biggest(self) -> str:
    return max(self.per_device, key=self.per_device.get)


def _resolve_mesh(shape: Sequence[int], devices: Optional[int]) -> Tuple[int, ...]:
  shape = [int(s) for s in shape]
  if len(shape) not in (2, 3) or shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
    raise ValueError(
      f"mesh must be (data, model) or (data, fsdp, model) with at most one -1, got {tuple(shape)}"
    )
  if -1 in shape:
    if devices is None:
      raise ValueError(f"mesh {tuple(shape)} has a -1: give the number of devices to plan for")
    known = int(np.prod([s for s in shape if s != -1]))
    if devices % known:
      raise ValueError(f"mesh {tuple(shape)}: {known} does not divide {devices} devices")
    shape[shape.index(-1)] = devices // known
  return tuple(shape)


def _shard_factor(keys, shape, logical_axes, mesh: Dict[str, int], rules) -> int:
  """How many ways a leaf is split: the product, over its dimensions, of the mesh sizes its
  logical names map to. A dimension the mesh axis does not divide is refused, naming the leaf,
  as placing it would be."""
  rule = dict(rules)
  factor = 1
  for i, (dim, name) in enumerate(zip(shape, tuple(logical_axes or ()))):
    axis = rule.get(name) if name is not None else None
    if axis is None or mesh[axis] == 1:
      continue
    if dim % mesh[axis]:
      raise ValueError(
        f"{'/'.join(keys)} {tuple(shape)}: dimension {i} ({name}={dim}) is not divisible by the "
        f"mesh's {axis} axis ({mesh[axis]}); choose a mesh whose {axis} size divides it"
      )
    factor *= mesh[axis]
  return factor


def _leaf_bytes(x) -> int:
  return int(np.prod(x.shape, dtype=np.int64)) * np.dtype(x.dtype).itemsize


def _boxed_leaves(tree):
  """[(path keys, abstract leaf, logical axis names)] of a tree of boxed abstract values."""
  out = []

  def visit(path, x):
    if isinstance(x, nn.Partitioned):
      out.append((_keys(path), x.value, tuple(x.names)))
    else:
      out.append((_keys(path), x, ()))

  jax.tree_util.tree_map_with_path(visit, tree, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  return out


def _sharded_bytes(abstract_boxed, mesh: Dict[str, int], rules) -> Tuple[int, int, Dict]:
  """(per-device bytes, total bytes, path -> (split factor, shape)) of a boxed abstract tree."""
  per_device = total = 0
  factors = {}
  for keys, leaf, names in _boxed_leaves(abstract_boxed):
    factor = _shard_factor(keys, leaf.shape, names, mesh, rules)
    factors[keys] = (factor, tuple(leaf.shape))
    size = _leaf_bytes(leaf)
    per_device += -(-size // factor)
    total += size
  return per_device, total, factors


def _keys(path) -> Tuple[str, ...]:
  return tuple(str(getattr(k, "key")) for k in path if hasattr(k, "key"))


def _optimizer_bytes(opt_abstract, param_factors: Dict) -> Tuple[int, int]:
  """Optimiser state bytes: a leaf with its parameter's path suffix and shape is split like it."""
  per_device = total = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(opt_abstract):
    keys, factor = _keys(path), 1
    for n in range(len(keys), 0, -1):
      hit = param_factors.get(keys[-n:])
      if hit is not None:
        factor = hit[0] if hit[1] == tuple(leaf.shape) else 1
        break
    size = _leaf_bytes(leaf)
    per_device += -(-size // factor)
    total += size
  return per_device, total


def plan_memory(
  config, mesh_shape: Optional[Sequence[int]] = None, devices: Optional[int] = None
) -> MemoryPlan:
  """The per-device memory of `config` on a (data, model) mesh (default: the config's
  `sharding.mesh`, with -1 resolved against `devices`)."""
  from adalink.peft import methods
  from adalink.train import optim

  shape = _resolve_mesh(mesh_shape or cf.require(config, "sharding.mesh"), devices)
  names = (
    (partitioning.DATA, partitioning.MODEL)
    if len(shape) == 2
    else (partitioning.DATA, partitioning.FSDP, partitioning.MODEL)
  )
  mesh = dict(zip(names, shape))
  rules = partitioning.rules_for(names)
  data_ways = int(np.prod([mesh[a] for a in partitioning.data_axes(names)]))
  model_ways = mesh[partitioning.MODEL]
  family = plan_lib.model_family(config)
  model_cfg = family.make_config(config)
  spec = plan_lib.method_spec(config, model_cfg)
  model = family.build_model(model_cfg, spec)
  boxed = methods.abstract_variables(model)
  trainable_boxed, frozen_boxed = methods.split_variables(spec, boxed)
  frozen_dev, frozen_total, _ = _sharded_bytes(frozen_boxed, mesh, rules)
  train_dev, train_total, factors = _sharded_bytes(trainable_boxed, mesh, rules)
  # Gradients are float32 copies of the trainable weights, placed like them.
  grad_dev = sum(-(-int(np.prod(s, dtype=np.int64)) * 4 // f) for f, s in factors.values())
  grad_total = sum(int(np.prod(s, dtype=np.int64)) * 4 for _, s in factors.values())
  tx, _ = optim.make_optimizer(cf.require(config, "optimizer"), cf.require(config, "schedule"))
  opt_abstract = jax.eval_shape(tx.init, nn.unbox(trainable_boxed))
  opt_dev, opt_total = _optimizer_bytes(opt_abstract, factors)
  batch = cf.positive_int(config, "data.batch_size")
  if batch % data_ways:
    raise ValueError(
      f"data.batch_size={batch} is not divisible by the mesh's data axis ({data_ways})"
    )
  per_row = batch // data_ways
  inputs = cf.positive_int(config, "data.inputs_length")
  targets = int(cf.require(config, "data.targets_length") or 1)
  text_cfg = family.text_config(model_cfg)
  acts = 0
  if family.activation_bytes is not None:
    acts = family.activation_bytes(model_cfg, per_row, inputs, targets, model_ways)
  description = (
    f"model.kind={family.name} size={cf.get(config, 'model.size')} method={spec.name} "
    f"mesh ({', '.join(f'{k}={v}' for k, v in mesh.items())}) batch {batch} "
    f"({per_row} per device) "
    f"x {inputs}+{targets} tokens, activations {text_cfg.dtype}, "
    f"remat {getattr(text_cfg, 'remat', 'none')}"
    + ("" if family.activation_bytes else f" (no activation estimate for model.kind={family.name})")
  )
  return MemoryPlan(
    shape,
    dict(
      frozen=frozen_dev,
      trainable=train_dev,
      gradients=grad_dev,
      optimizer=opt_dev,
      activations=acts,
    ),
    dict(
      frozen=frozen_total,
      trainable=train_total,
      gradients=grad_total,
      optimizer=opt_total,
      activations=acts * int(np.prod(shape)),
    ),
    per_row,
    description,
  )


def fits(plan: MemoryPlan, device: str) -> Tuple[bool, int]:
  """(whether the plan's per-device total fits `device`, the device's bytes)."""
  if device not in DEVICES:
    raise ValueError(f"unknown device {device!r}; known: {sorted(DEVICES)}")
  return plan.total <= DEVICES[device], DEVICES[device]


def device_bytes() -> Optional[int]:
  """The memory of this process's first device, when the backend reports it (GPU, TPU; not CPU)."""
  stats = jax.local_devices()[0].memory_stats() or {}
  limit = stats.get("bytes_limit")
  return int(limit) if limit else None


def check_fits_here(config, mesh_shape: Tuple[int, int], log=None) -> MemoryPlan:
  """Plans `config` on the run's mesh, logs the summary, and refuses a run that cannot fit this
  machine's devices (when they report their memory), naming the largest item."""
  plan = plan_memory(config, mesh_shape)
  if log is not None:
    log("memory plan:\n%s", format_plan(plan))
  budget = device_bytes()
  if budget is not None and plan.total > budget:
    item = plan.biggest()
    raise ValueError(
      f"this run needs about {_gib(plan.total)} per device but {jax.local_devices()[0].device_kind} "
      f"has {_gib(budget)}; the largest item is {item} ({_gib(plan.per_device[item])}). Shard it "
      f"over more devices (sharding.mesh), lower data.batch_size, or see scripts/plan_memory.py"
    )
  return plan


def _gib(n: int) -> str:
  return f"{n / 2**30:,.2f} GiB"


def format_plan(plan: MemoryPlan, device: Optional[str] = None) -> str:
  lines = [plan.description, "", "| item | per device | whole model |", "|---|---|---|"]
  for item in ITEMS:
    lines.append(f"| {item} | {_gib(plan.per_device[item])} | {_gib(plan.totals[item])} |")
  lines.append(f"| **total** | **{_gib(plan.total)}** | |")
  if device:
    ok, cap = fits(plan, device)
    verdict = "fits" if ok else f"does NOT fit (largest item: {plan.biggest()})"
    lines += ["", f"{device} ({_gib(cap)} per device): {verdict}"]
  return "\n".join(lines)
