"""Running a stack of identical blocks unrolled or under `nn.scan`, with optional remat, and
converting parameter trees between the two layouts.

Unrolled, block i's variables live under `layers_i` (the T5X layout the readers and writers use);
scanned, one `layers` entry holds every block's variables stacked on a leading axis named
`layers` (a logical axis the partitioning rules replicate). Scanning makes compile time
independent of depth; remat trades the backward pass's recomputation for the activations it would
otherwise keep. `stack_layers` / `unstack_layers` convert any tree with that structure (parameters,
LoRA adapters, optimiser state) between the layouts, so a checkpoint written either way can be read
by a run of the other.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

SCANNED_NAME = "layers"
LAYER_AXIS = "layers"  # logical name of the stacked axis (replicated by every rule set)
_UNROLLED = re.compile(r"^layers_(\d+)$")

# What the backward pass keeps from each block's forward pass. "none" keeps everything (no
# remat); "full" keeps only each block's input and recomputes the rest; "dots" keeps matmul
# outputs; "dots_no_batch" keeps those without a batch dimension (the weight-like ones).
REMAT_POLICIES = {
  "none": None,
  "full": jax.checkpoint_policies.nothing_saveable,
  "dots": jax.checkpoint_policies.checkpoint_dots,
  "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}


def check_remat(policy: str, where: str) -> None:
  if policy not in REMAT_POLICIES:
    raise ValueError(f"{where} must be one of {sorted(REMAT_POLICIES)}, got {policy!r}")


def run_stack(
  make_block: Callable[[str], nn.Module],
  num_layers: int,
  x,
  call: Callable[[nn.Module, Any], Any],
  scan: bool,
  remat: str,
  variable_axes: Sequence[str] = ("params",),
):
  """Applies `num_layers` blocks to `x` in sequence: `call(block, x)` runs one block.

  `make_block(name)` builds a block (inside the caller's compact scope). Everything `call` needs
  besides `x` (masks, biases, flags) is closed over, so it is the same for every layer, as scan
  requires. Unrolled, block i is named `layers_i`; scanned, the one lifted block is `layers`.
  """
  check_remat(remat, "remat policy")
  body = lambda block, carry: (call(block, carry), None)
  if remat != "none":
    # Under scan, the loop already keeps XLA from merging the recomputation into the forward
    # pass, so the extra guard against common-subexpression elimination is only needed unrolled.
    body = nn.remat(body, policy=REMAT_POLICIES[remat], prevent_cse=not scan)
  if not scan:
    for i in range(num_layers):
      x, _ = body(make_block(f"layers_{i}"), x)
    return x
  scanned = nn.scan(
    body,
    variable_axes={name: 0 for name in variable_axes},
    split_rngs={"params": True, "dropout": True},
    length=num_layers,
    metadata_params={nn.PARTITION_NAME: LAYER_AXIS},
  )
  x, _ = scanned(make_block(SCANNED_NAME), x)
  return x


def _layer_keys(tree: Mapping[str, Any]) -> Optional[list]:
  found = {int(m.group(1)): k for k in tree for m in [_UNROLLED.match(k)] if m}
  if not found:
    return None
  if sorted(found) != list(range(len(found))):
    raise ValueError(f"layers are not numbered 0..{len(found) - 1}: {sorted(found)}")
  return [found[i] for i in range(len(found))]


def stack_layers(tree: Any, under: Sequence[str] = ("encoder", "decoder")) -> Any:
  """Unrolled -> scanned: inside each subtree named in `under`, `layers_0..layers_{n-1}` become
  one `layers` entry whose leaves are the per-layer leaves stacked on a new leading axis."""

  def visit(node, inside):
    if not isinstance(node, Mapping):
      return node
    keys = _layer_keys(node) if inside else None
    out = {}
    if keys:
      if SCANNED_NAME in node:
        raise ValueError(f"a tree has both {SCANNED_NAME!r} and {keys[0]!r}: mixed layouts")
      blocks = [node[k] for k in keys]
      structures = {jax.tree_util.tree_structure(b) for b in blocks}
      if len(structures) != 1:
        raise ValueError(f"cannot stack {keys}: the layers' variables differ")
      out[SCANNED_NAME] = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *blocks)
    for k, v in node.items():
      if keys and k in keys:
        continue
      out[k] = visit(v, inside or k in under)
    return out

  return visit(tree, False)


def unstack_layers(tree: Any, under: Sequence[str] = ("encoder", "decoder")) -> Any:
  """Scanned -> unrolled: the inverse of `stack_layers`."""

  def visit(node, inside):
    if not isinstance(node, Mapping):
      return node
    out = {}
    for k, v in node.items():
      if inside and k == SCANNED_NAME and isinstance(v, Mapping):
        leaves = jax.tree_util.tree_leaves(v)
        depth = {leaf.shape[0] for leaf in leaves}
        if len(depth) != 1:
          raise ValueError(f"scanned layers disagree on their depth: {sorted(depth)}")
        (n,) = depth
        for i in range(n):
          out[f"layers_{i}"] = jax.tree_util.tree_map(lambda x, i=i: x[i], v)
      else:
        out[k] = visit(v, inside or k in under)
    return out

  return visit(tree, False)


def is_stacked_path(keys: Sequence[str], under: Sequence[str] = ("encoder", "decoder")) -> bool:
  """True for the path (dict keys) of a leaf inside scanned layers: `.../encoder/layers/...`."""
  return any(a in under and b == SCANNED_NAME for a, b in zip(keys, keys[1:]))


def is_scanned(tree: Any, under: Sequence[str] = ("encoder", "decoder")) -> bool:
  """True when some subtree named in `under` holds scanned layers."""
  if not isinstance(tree, Mapping):
    return False
  for k, v in tree.items():
    if k in under and isinstance(v, Mapping) and SCANNED_NAME in v:
      return True
    if is_scanned(v, under):
      return True
  return False
