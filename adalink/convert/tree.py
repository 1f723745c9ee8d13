"""Checks shared by the checkpoint readers: the parameter tree a config expects, and comparing a
loaded tree against it.

The expected tree comes from the model itself (`t5.abstract_params`, shapes only, nothing
allocated), so the readers can never drift from what `adalink.models.t5.T5` builds.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np
import flax.linen as nn
from flax import traverse_util

from adalink.models import t5, t5_config


def expected_shapes(config: t5_config.T5Config) -> Dict[str, Tuple[int, ...]]:
  """'encoder/layers_0/attention/query/kernel' -> shape, for every parameter `config` builds."""
  abstract = nn.unbox(t5.abstract_params(config.replace(dtype="float32")))["params"]
  flat = traverse_util.flatten_dict(abstract, sep="/")
  return {k: tuple(v.shape) for k, v in flat.items()}


def flatten(params: Mapping[str, Any]) -> Dict[str, Any]:
  return traverse_util.flatten_dict(dict(params), sep="/")


def unflatten(flat: Mapping[str, Any]) -> Dict[str, Any]:
  return traverse_util.unflatten_dict(dict(flat), sep="/")


def _listing(items, limit: int = 12) -> str:
  items = list(items)
  shown = "; ".join(items[:limit])
  return shown + (f"; ... and {len(items) - limit} more" if len(items) > limit else "")


def check_shapes(
  found: Mapping[str, Tuple[int, ...]],
  expected: Mapping[str, Tuple[int, ...]],
  source: str,
  allow_extra: bool = False,
) -> None:
  """Raises one ValueError listing every missing, mis-shaped (and, unless `allow_extra`,
  unexpected) key, each with the expected and found shape."""
  problems = []
  for key, shape in expected.items():
    if key not in found:
      problems.append(f"missing {key!r} (expected shape {tuple(shape)})")
    elif tuple(found[key]) != tuple(shape):
      problems.append(f"{key!r} has shape {tuple(found[key])}, expected {tuple(shape)}")
  if not allow_extra:
    for key in found:
      if key not in expected:
        problems.append(f"unexpected {key!r} (shape {tuple(found[key])})")
  if problems:
    raise ValueError(f"{source}: {len(problems)} parameter problem(s): {_listing(problems)}")


def to_float32(arr: Any, key: str, source: str) -> np.ndarray:
  arr = np.asarray(arr)
  # ml_dtypes' bfloat16 and float8 types are not numpy `floating` subtypes.
  if not (
    np.issubdtype(arr.dtype, np.floating)
    or arr.dtype.name == "bfloat16"
    or arr.dtype.name.startswith("float8")
  ):
    raise ValueError(f"{source}: {key!r} has dtype {arr.dtype}, expected a floating-point type")
  return np.asarray(arr, dtype=np.float32, order="C")


def check_fields_match(from_file: Any, given: Any, fields: Sequence[str], source: str) -> None:
  """Raises one ValueError naming every field in `fields` on which a caller-given config differs
  from the one read from a checkpoint (two configs of the same class)."""
  diffs = [
    f"{f}: checkpoint {getattr(from_file, f)!r}, given {getattr(given, f)!r}"
    for f in fields
    if getattr(from_file, f) != getattr(given, f)
  ]
  if diffs:
    raise ValueError(
      f"{source}: the given {type(given).__name__} does not match the checkpoint's: "
      + "; ".join(diffs)
    )


def check_same_architecture(
  from_file: t5_config.T5Config, given: t5_config.T5Config, source: str
) -> None:
  """A caller-given config must describe the network the checkpoint holds."""
  check_fields_match(from_file, given, t5_config.ARCHITECTURE_FIELDS, source)


def resolve_config(config: Any) -> t5_config.T5Config:
  """A T5Config as given, or a named size (`adalink.models.t5_config.SIZES`)."""
  if isinstance(config, t5_config.T5Config):
    return config
  if isinstance(config, str):
    return t5_config.get_config(config)
  raise TypeError(
    f"config must be a T5Config, a size name from {sorted(t5_config.SIZES)} or None, "
    f"got {type(config).__name__}: {config!r}"
  )
