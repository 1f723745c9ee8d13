"""Device mesh and the rules that place logical axes on it.

Every parameter carries logical axis names (see `adalink.models.layers`); the rules below map them
onto a 2-D mesh ("data", "model"): the batch is split over `data`, and the wide dimensions of the
weights (vocab, mlp, heads, joined_kv) over `model`, so the same program runs on 1 CPU, 8 fake
CPU devices, a GPU or a TPU slice. The embed dimension stays replicated there: splitting the
activations' embed dimension would put a collective inside every layer norm.

A 3-D mesh ("data", "fsdp", "model") adds fully sharded data parallelism: the batch is split over
`data` and `fsdp` together, and every parameter (hence its gradient and optimiser state) is also
split along its embed dimension over `fsdp`, so each of N fsdp devices holds 1/N of the weights;
XLA gathers a layer's weights when it runs. Activations keep their embed dimension whole (the
batch already uses `fsdp`), so layer norms stay local.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import jax
import numpy as np
import flax.linen as nn
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA, FSDP, MODEL = "data", "fsdp", "model"

DEFAULT_RULES: Tuple[Tuple[str, Optional[str]], ...] = (
  ("batch", DATA),
  ("length", None),
  ("embed", None),
  ("vocab", MODEL),
  ("mlp", MODEL),
  ("heads", MODEL),
  ("joined_kv", MODEL),
  ("kv", None),
  ("relpos_buckets", None),
  ("tasks", None),
  ("prompt", None),
  ("layers", None),  # the stacked axis of scanned layers: every device holds every layer's slice
)


# The same rules on a (data, fsdp, model) mesh. Order matters: a logical name takes its rule's mesh
# axes only if no earlier dimension of the same array took them, so an activation's batch takes
# `fsdp` before its embed dimension could.
FSDP_RULES: Tuple[Tuple[str, Any], ...] = (
  ("batch", (DATA, FSDP)),
  ("embed", FSDP),
) + tuple(r for r in DEFAULT_RULES if r[0] not in ("batch", "embed"))


def rules_for(mesh_axes: Sequence[str]) -> Tuple[Tuple[str, Any], ...]:
  """The logical-axis rules of a mesh with these axis names."""
  return FSDP_RULES if FSDP in tuple(mesh_axes) else DEFAULT_RULES


def data_axes(mesh_axes: Sequence[str]) -> Tuple[str, ...]:
  """The mesh axes the batch is split over."""
  return (DATA, FSDP) if FSDP in tuple(mesh_axes) else (DATA,)


def make_mesh(shape: Sequence[int], devices: Optional[Sequence[Any]] = None) -> Mesh:
  """A (data, model) or (data, fsdp, model) mesh. One entry may be -1: it takes the devices the
  others leave.

  A shape that does not use exactly the available devices is refused with both numbers, since
  a silent fallback would change the effective batch or the memory per device.
  """
  devices = list(devices if devices is not None else jax.devices())
  n = len(devices)
  shape = [int(s) for s in shape]
  if len(shape) not in (2, 3):
    raise ValueError(
      f"sharding.mesh must have 2 entries (data, model) or 3 (data, fsdp, model), got {shape}"
    )
  if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
    raise ValueError(f"sharding.mesh entries must be positive, with at most one -1; got {shape}")
  if -1 in shape:
    known = int(np.prod([s for s in shape if s != -1]))
    if n % known:
      raise ValueError(f"sharding.mesh {shape}: {known} does not divide the {n} devices")
    shape[shape.index(-1)] = n // known
  if int(np.prod(shape)) != n:
    raise ValueError(
      f"sharding.mesh {tuple(shape)} needs {int(np.prod(shape))} devices, but {n} are available"
    )
  axes = (DATA, MODEL) if len(shape) == 2 else (DATA, FSDP, MODEL)
  return Mesh(np.asarray(devices).reshape(shape), axes)


def logical_shardings(boxed_tree, mesh: Mesh, rules=None):
  """NamedShardings for a tree of logically-partitioned values (abstract or concrete); the rules
  default to the mesh's (`rules_for`)."""
  specs = nn.get_partition_spec(boxed_tree)
  return nn.logical_to_mesh_sharding(specs, mesh, rules or rules_for(mesh.axis_names))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension over the data axes (`data`, and `fsdp` when the mesh has it)."""
  axes = data_axes(mesh.axis_names)
  return NamedSharding(mesh, P(axes if len(axes) > 1 else axes[0]))


def data_ways(mesh: Mesh) -> int:
  """How many ways the batch is split."""
  return int(np.prod([mesh.shape[a] for a in data_axes(mesh.axis_names)]))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_divisible(batch_size: int, mesh: Mesh, where: str = "data.batch_size"):
  n, axes = data_ways(mesh), data_axes(mesh.axis_names)
  if batch_size % n:
    what = "data axis" if len(axes) == 1 else f"data axes ({' x '.join(axes)})"
    raise ValueError(f"{where}={batch_size} is not divisible by the mesh's {what} ({n})")
  if batch_size % jax.process_count():
    raise ValueError(
      f"{where}={batch_size} is not divisible by the {jax.process_count()} processes"
    )


def global_batch(local_batch, mesh: Mesh):
  """Assembles each process's slice of the batch into global arrays sharded over `data`."""
  sharding = batch_sharding(mesh)
  return jax.tree_util.tree_map(
    lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
  )


def optimizer_state_shardings(abstract_opt_state, param_shardings, mesh: Mesh):
  """Shardings for an optimiser state tree, derived from the parameters it tracks.

  A state leaf whose key path ends with a parameter's path and has that parameter's shape (a
  second moment, a momentum) is placed like the parameter. Everything else (step counters,
  Adafactor's factored row/column statistics, which are a dimension smaller) is replicated:
  small by construction, and replicating keeps every leaf on the whole mesh.
  """
  by_path = {}
  for path, sharding in jax.tree_util.tree_flatten_with_path(param_shardings)[0]:
    by_path[_dict_keys(path)] = sharding
  repl = replicated(mesh)

  def place(path, leaf):
    keys = _dict_keys(path)
    for n in range(len(keys), 0, -1):
      sharding = by_path.get(keys[-n:])
      if sharding is not None:
        return sharding if _fits(sharding, leaf.shape) else repl
    return repl

  return jax.tree_util.tree_map_with_path(place, abstract_opt_state)


def _dict_keys(path) -> Tuple[str, ...]:
  return tuple(str(getattr(k, "key")) for k in path if hasattr(k, "key"))


def _fits(sharding: NamedSharding, shape) -> bool:
  """True when the sharding's spec has one entry per dimension and divides each one."""
  spec = tuple(sharding.spec)
  if len(spec) > len(shape):
    return False
  for dim, axis in zip(shape, spec):
    if axis is None:
      continue
    axes = axis if isinstance(axis, tuple) else (axis,)
    size = int(np.prod([sharding.mesh.shape[a] for a in axes]))
    if dim % size:
      return False
  return True
