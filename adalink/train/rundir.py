"""The run directory's config record: writing it, reading it back, and refusing to resume a
directory that holds a run of another model or method."""

from __future__ import annotations

import json
import os

import jax

from adalink import config_fields as cf

CONFIG_FILE = "config.json"
# Sections that must not change between a run and its resumption.
FIXED_SECTIONS = ("model", "method")
# Fields added to those sections later, with what a run recorded before them had meant.
ADDED_DEFAULTS = {"model": {"scan_layers": False, "remat": "none"}}
# Fields that may change between a run and its resumption: they change how a step is computed
# (what the backward pass recomputes), not what the checkpoint holds.
FREE_ON_RESUME = {"model": ("remat",)}


def check_usable(workdir: str) -> None:
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"--workdir {workdir} exists and is not a directory")


def check_resumable(workdir: str, config) -> None:
  """Refuses to resume a run directory written by a different model or method."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = json.load(f)
  new = cf.to_json(config)
  for section in FIXED_SECTIONS:
    before, now = _comparable(section, old.get(section)), _comparable(section, new.get(section))
    if before != now:
      fields = sorted(
        k for k in set(before or {}) | set(now or {}) if (before or {}).get(k) != (now or {}).get(k)
      )
      raise ValueError(
        f"{workdir} holds a run with a different config.{section} (fields {fields}: "
        f"{ {k: (before or {}).get(k) for k in fields} } in the run vs "
        f"{ {k: (now or {}).get(k) for k in fields} } now); use a new --workdir"
      )


def _comparable(section: str, fields):
  if not isinstance(fields, dict):
    return fields
  out = {**ADDED_DEFAULTS.get(section, {}), **fields}
  for name in FREE_ON_RESUME.get(section, ()):
    out.pop(name, None)
  return out


def write_config(workdir: str, config) -> None:
  """Creates the work dir and records the config in it (process 0 writes)."""
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
      json.dump(cf.to_json(config), f, indent=2, sort_keys=True)


def load_run_config(workdir: str):
  """The ConfigDict a run directory was trained with (its `config.json`)."""
  import ml_collections

  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} is not a run directory: no {CONFIG_FILE}")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))
