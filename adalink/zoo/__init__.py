"""Pretrained bases that ship inside the package, so runs need no download.

Each entry is a folder `adalink/zoo/<name>/` in the Hugging Face T5 layout (`config.json`,
`model.safetensors`, `spiece.model`), with `MANIFEST.json` (the sha256 and size of every file) and
`README.md` (how it was made: command, steps, tokens, time, validation loss). A config names one as

    config.model.checkpoint = "{package}/zoo/t5_nano_en"
    config.model.vocab_path = "{package}/zoo/t5_nano_en/spiece.model"

(`{package}` is this package's folder, expanded by the trainer's path resolver), and
`checkpoint_dir(name)` gives the same path to code. `verify(name)` checks the files against the
manifest, so a damaged or partial install is reported by file name instead of as a bad model.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Dict

ZOO_DIR = os.path.dirname(os.path.abspath(__file__))
MANIFEST = "MANIFEST.json"


def names() -> tuple:
  """The shipped bases (folders holding a manifest)."""
  return tuple(
    sorted(d for d in os.listdir(ZOO_DIR) if os.path.isfile(os.path.join(ZOO_DIR, d, MANIFEST)))
  )


def checkpoint_dir(name: str) -> str:
  path = os.path.join(ZOO_DIR, name)
  if not os.path.isfile(os.path.join(path, MANIFEST)):
    raise ValueError(f"no shipped base {name!r} in {ZOO_DIR}; shipped: {list(names())}")
  return path


def file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def write_manifest(path: str) -> Dict[str, Dict[str, object]]:
  """Records the sha256 and size of every model file in `path/MANIFEST.json` (README excluded)."""
  files = {}
  for fname in sorted(os.listdir(path)):
    full = os.path.join(path, fname)
    if fname in (MANIFEST, "README.md") or not os.path.isfile(full):
      continue
    files[fname] = {"sha256": file_sha256(full), "bytes": os.path.getsize(full)}
  with open(os.path.join(path, MANIFEST), "w") as f:
    json.dump({"files": files}, f, indent=2, sort_keys=True)
    f.write("\n")
  return files


def verify(name: str) -> str:
  """Checks every file of a shipped base against its manifest; returns its folder."""
  path = checkpoint_dir(name)
  with open(os.path.join(path, MANIFEST)) as f:
    files = json.load(f)["files"]
  for fname, want in sorted(files.items()):
    full = os.path.join(path, fname)
    if not os.path.isfile(full):
      raise FileNotFoundError(f"{full}: listed in {MANIFEST} but missing (reinstall the package)")
    got = file_sha256(full)
    if got != want["sha256"]:
      raise ValueError(
        f"{full}: sha256 {got[:12]}... does not match {MANIFEST} ({want['sha256'][:12]}...); "
        f"the file is damaged or was replaced"
      )
  return path
