"""Collision-free use of seqio's global registries from config-driven code.

seqio refuses to register a name twice, but configs build tasks from arguments and tests build them
again and again. Each provider is therefore registered under ``<base>_<digest>`` where the digest
covers every argument that changes what it yields: the same arguments give back the provider already
registered, different ones a different name.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Mapping, TypeVar

import seqio

P = TypeVar("P", seqio.Task, seqio.Mixture)


def config_digest(config: Mapping[str, Any]) -> str:
  """A short digest of a JSON-able config (non-JSON values go through ``str``)."""
  blob = json.dumps(config, sort_keys=True, default=str)
  return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:10]


def unique_name(base: str, config: Mapping[str, Any]) -> str:
  return f"{base}_{config_digest(config)}"


def get_or_register_task(
  base: str, config: Mapping[str, Any], build: Callable[[str], seqio.Task]
) -> seqio.Task:
  """Returns the task registered for ``(base, config)``, building and registering it if new."""
  return _get_or_register(seqio.TaskRegistry, base, config, build)


def get_or_register_mixture(
  base: str, config: Mapping[str, Any], build: Callable[[str], seqio.Mixture]
) -> seqio.Mixture:
  """Returns the mixture registered for ``(base, config)``, building and registering it if new."""
  return _get_or_register(seqio.MixtureRegistry, base, config, build)


def _get_or_register(
  registry, base: str, config: Mapping[str, Any], build: Callable[[str], P]
) -> P:
  name = unique_name(base, config)
  if name in registry.names():
    return registry.get(name)
  provider = build(name)
  registry.add_provider(name, provider)
  return provider
