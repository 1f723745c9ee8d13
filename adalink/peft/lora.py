"""LoRA on the T5 encoder's projections: targets, and merging the adapters into the kernels.

The branch itself lives in `adalink.models.layers.Dense` (LoRA is the one intrusive method, so it
has to sit inside the layer); this module names what it may attach to and folds trained adapters
back into plain kernels for serving, after which the base model runs at its own cost.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import jax.numpy as jnp
from flax import traverse_util

ATTENTION_TARGETS = ("query", "key", "value", "out")
MLP_TARGETS = ("wi", "wi_0", "wi_1", "wo")
ALL_TARGETS = ATTENTION_TARGETS + MLP_TARGETS


def merge_lora(
  params: Dict[str, Any], adapters: Dict[str, Any], rank: int, alpha: float
) -> Dict[str, Any]:
  """Returns `params` with every LoRA pair folded in: kernel + (alpha / rank) * A @ B.

  Adapters are matched to kernels by path, so a pair whose layer is missing from `params` is an
  error naming the path (it would otherwise be dropped silently).
  """
  flat = traverse_util.flatten_dict(params)
  flat_ad = traverse_util.flatten_dict(adapters)
  pairs = {}
  for path, value in flat_ad.items():
    if path[-1] in ("lora_a", "lora_b"):
      pairs.setdefault(path[:-1], {})[path[-1]] = value
  scale = alpha / rank
  for layer, ab in pairs.items():
    kernel_path = layer + ("kernel",)
    if kernel_path not in flat:
      raise KeyError(f"LoRA adapter at {'/'.join(layer)} has no kernel in the base params")
    if set(ab) != {"lora_a", "lora_b"}:
      raise KeyError(
        f"LoRA adapter at {'/'.join(layer)} is missing { ({'lora_a', 'lora_b'} - set(ab)) }"
      )
    kernel = flat[kernel_path]
    flat[kernel_path] = (kernel.astype(jnp.float32) + scale * (ab["lora_a"] @ ab["lora_b"])).astype(
      kernel.dtype
    )
  return traverse_util.unflatten_dict(flat)


def lora_layers(adapters: Dict[str, Any]) -> Tuple[str, ...]:
  """Paths of the layers carrying LoRA weights, for reports and tests."""
  flat = traverse_util.flatten_dict(adapters)
  return tuple(sorted({"/".join(p[:-1]) for p in flat if p[-1] in ("lora_a", "lora_b")}))
