"""What the ViT checkpoint readers (`hf_vit`, `big_vision_vit`) share: the conversion plan and the
code that carries one out into the tree `adalink.models.vit.ViT` builds.

A reader describes a checkpoint as a `Plan`: each of our parameter paths maps to the source keys
it is made from and a function of those arrays. `assemble` then checks every source tensor's shape
before any data is read: a missing or mis-shaped tensor raises one ValueError naming each such
key with its expected and found shape, and a tensor the plan does not know (e.g. an extra block)
is refused rather than dropped. Parameters come back as float32 numpy arrays (nested dict, the
`params` collection).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Sequence, Tuple

import flax.linen as nn
import numpy as np

from adalink.convert import tree
from adalink.models import vit as vit_lib

# A plan maps each parameter path to (source keys, function of those arrays -> the parameter).
Plan = Dict[str, Tuple[Tuple[str, ...], Callable[..., np.ndarray]]]


def expected_shapes(config: vit_lib.ViTConfig) -> Dict[str, Tuple[int, ...]]:
  """'encoder/layers_0/attention/query/kernel' -> shape, for every parameter `config` builds."""
  abstract = vit_lib.abstract_params(config.replace(dtype="float32"))
  return {k: tuple(v.shape) for k, v in tree.flatten(nn.unbox(abstract)["params"]).items()}


def check_same_architecture(
  from_file: vit_lib.ViTConfig, given: vit_lib.ViTConfig, source: str
) -> None:
  """A caller-given config must describe the network the checkpoint holds."""
  tree.check_fields_match(from_file, given, vit_lib.ARCHITECTURE_FIELDS, source)


def resolve_config(config: Any) -> vit_lib.ViTConfig:
  """A ViTConfig as given, or a named size (`adalink.models.vit.SIZES`)."""
  if isinstance(config, vit_lib.ViTConfig):
    return config
  if isinstance(config, str):
    return vit_lib.get_config(config)
  raise TypeError(
    f"config must be a ViTConfig or a size name from {sorted(vit_lib.SIZES)}, "
    f"got {type(config).__name__}: {config!r}"
  )


def identity(a: np.ndarray) -> np.ndarray:
  """The plan function of a tensor stored exactly as the parameter is."""
  return a


def assemble(
  plan: Plan,
  wanted: Mapping[str, Tuple[int, ...]],
  found: Mapping[str, Tuple[int, ...]],
  read: Callable[[str], Any],
  config: vit_lib.ViTConfig,
  source: str,
  ignored: Sequence[str] = (),
  hint: str = "",
) -> Dict[str, Any]:
  """Checks `found` (every source tensor's shape, by key) against `wanted`, then builds the tree.

  `found` holds only the keys that belong to the ViT (already restricted to the prefix), so any
  key there that is neither wanted nor under an `ignored` prefix is unexpected. `read(key)` gives
  a source array; each is read once, and only after every shape has been checked. `hint` is
  appended to the error about unexpected tensors.
  """
  tree.check_shapes({k: found[k] for k in wanted if k in found}, wanted, source, allow_extra=True)
  unexpected = sorted(k for k in found if k not in wanted and not k.startswith(tuple(ignored)))
  if unexpected:
    shown = "; ".join(f"{k!r} {tuple(found[k])}" for k in unexpected[:12])
    more = f"; ... and {len(unexpected) - 12} more" if len(unexpected) > 12 else ""
    raise ValueError(
      f"{source}: {len(unexpected)} tensor(s) this ViTConfig has no place for: {shown}{more}{hint}"
    )
  cache: Dict[str, np.ndarray] = {}

  def get(key: str) -> np.ndarray:
    if key not in cache:
      cache[key] = tree.to_float32(read(key), key, source)
    return cache[key]

  flat = {
    path: np.ascontiguousarray(fn(*(get(k) for k in keys)), dtype=np.float32)
    for path, (keys, fn) in plan.items()
  }
  # The plan is written by hand; make sure it builds exactly the model's tree.
  tree.check_shapes(
    {k: v.shape for k, v in flat.items()}, expected_shapes(config), f"{source} (after conversion)"
  )
  return tree.unflatten(flat)
