"""Reading fields of a run's config (an `ml_collections.ConfigDict` or nested dicts) by dotted name.

Shared by the trainer and the data families, so both refuse a missing or bad field the same way,
naming it as the user writes it (`config.data.batch_size`). `require` is the rule: the configs
carry the defaults, and code reads the fields it needs. `get` with a default is for fields that
are optional by meaning (an override that is usually absent, e.g. `model.vocab_size`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_MISSING = object()


def get(config, dotted: str, default: Any = None) -> Any:
  """`config.<dotted>`, or `default` when any part of the path is absent."""
  node = config
  for part in dotted.split("."):
    if node is None or not hasattr(node, "keys") or part not in node:
      return default
    node = node[part]
  return node


def require(config, dotted: str) -> Any:
  """`config.<dotted>` (None included, where a field means "none" by it); a ValueError naming
  the field when it is absent."""
  value = get(config, dotted, _MISSING)
  if value is _MISSING:
    raise ValueError(f"config.{dotted} is missing")
  return value


def positive_int(config, dotted: str) -> int:
  value = require(config, dotted)
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise ValueError(f"config.{dotted} must be a positive integer, got {value!r}")
  return value


def one_of(config, dotted: str, choices, default: Any = _MISSING) -> Any:
  """A field that must take one of `choices`; `default` only for fields some configs lack."""
  value = require(config, dotted) if default is _MISSING else get(config, dotted, default)
  if value not in choices:
    raise ValueError(f"config.{dotted} must be one of {tuple(choices)}, got {value!r}")
  return value


def resolve_path(path: str) -> str:
  """Expands `{package}` (the adalink package folder) and `~` in a config path."""
  return os.path.abspath(os.path.expanduser(path.replace("{package}", PACKAGE_DIR)))


def existing_path(config, dotted: str) -> str:
  """The resolved path in `config.<dotted>`, which must be set and exist."""
  value = get(config, dotted) or None
  if not value:
    raise ValueError(f"config.{dotted} is empty")
  path = resolve_path(value)
  if not os.path.exists(path):
    raise FileNotFoundError(f"config.{dotted}: no such file or directory: {path}")
  return path


def to_json(config) -> Dict[str, Any]:
  """The config as plain JSON values (what a run directory's `config.json` holds)."""
  return json.loads(config.to_json()) if hasattr(config, "to_json") else dict(config)
