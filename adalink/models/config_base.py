"""What every architecture config (`T5Config`, `ViTConfig`, `GemmaConfig`) does the same way: name
its activation dtype, and copy itself or round-trip through a plain dict (JSON run configs).

A config is a frozen dataclass that inherits `ConfigBase` and has a `dtype` field naming one of
`DTYPES`; it validates its own fields in `__post_init__`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Type, TypeVar

import jax.numpy as jnp

# Activation dtypes a config may name; parameters are always stored in float32.
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

C = TypeVar("C", bound="ConfigBase")


class ConfigBase:
  """Methods shared by the frozen config dataclasses (a mixin: it holds no fields)."""

  def check_dtype(self) -> None:
    """For `__post_init__`: the `dtype` field must name one of `DTYPES`."""
    if self.dtype not in DTYPES:
      raise ValueError(
        f"{type(self).__name__}.dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}"
      )

  @property
  def jnp_dtype(self):
    """The jax dtype of the activations, from the `dtype` field."""
    return DTYPES[self.dtype]

  def replace(self: C, **kwargs) -> C:
    """A copy with the given fields replaced (and checked again by `__post_init__`)."""
    return dataclasses.replace(self, **kwargs)

  def to_dict(self) -> Dict[str, Any]:
    """Every field by name, as `from_dict` reads it back."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls: Type[C], d: Dict[str, Any]) -> C:
    """The config from `to_dict`'s output; a field the class does not have is refused by name
    rather than dropped, so a stale run config is noticed."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise ValueError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(known)}")
    return cls(**d)
