"""Adapter files: a run's trained part alone, loadable onto its base anywhere.

An adapter directory holds two files:

  `adapter.safetensors`   every trained array, keyed by its variable path (`adapters/adalink/text/
                          down`, `adapters/encoder/layers_0/attention/query/lora_a`, ...);
  `adapter_config.json`   what is needed to rebuild the model around them and to check they meet
                          the base they were trained on: the format and its version, the method's
                          config fields, the task names and their ids, the base's family,
                          architecture and a fingerprint of its weights, the vocabulary's
                          fingerprint, how the run decoded (the defaults of a decode with it),
                          and each tensor's shape and dtype.

`load` reads and cross-checks the two files; `check_fits` compares an adapter with the base it is
about to be loaded onto and refuses, naming the key or the field, a missing or unexpected tensor,
a shape or dtype that differs, another architecture, and (unless `allow_different_base`) weights
other than the ones it was trained on. Full fine-tuning has no adapter: its whole model is the
result, exported as a checkpoint instead (`scripts/export.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping, Optional

import numpy as np
from flax import traverse_util

FORMAT = "adalink-adapter"
FORMAT_VERSION = 1
TENSORS_FILE = "adapter.safetensors"
CONFIG_FILE = "adapter_config.json"
# Fields of a model config that do not change what its weights mean (runtime settings).
# Adapter files are written with unrolled layers, so the layer layout is one of them too.
RUNTIME_FIELDS = ("dtype", "dropout_rate", "scan_layers", "remat")


class AdapterMismatch(ValueError):
  """An adapter file does not fit the base (or the method) it is loaded onto."""


def flatten(tree: Mapping[str, Any], as_numpy: bool = True) -> Dict[str, Any]:
  """{'collection/path/to/leaf': leaf} of a variables tree (leaves as numpy arrays, or as they
  are, e.g. shape structs, with `as_numpy=False`)."""
  return {
    "/".join(path): np.asarray(leaf) if as_numpy else leaf
    for path, leaf in traverse_util.flatten_dict(dict(tree)).items()
  }


def unflatten(flat: Mapping[str, Any]) -> Dict[str, Any]:
  return traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


def fingerprint_arrays(tree: Mapping[str, Any]) -> str:
  """sha256 over every leaf's path, dtype, shape and bytes, in path order: equal for the same
  weights however they were loaded, different if any one value differs."""
  digest = hashlib.sha256()
  for key, value in sorted(flatten(tree).items()):
    arr = np.ascontiguousarray(value)
    digest.update(f"{key}|{arr.dtype.str}|{arr.shape}\n".encode())
    digest.update(arr.tobytes())
  return "sha256:" + digest.hexdigest()


def fingerprint_file(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return "sha256:" + digest.hexdigest()


def architecture(model_config) -> Dict[str, Any]:
  """The model config's fields that define its weights (runtime fields dropped), JSON-ready."""
  fields = model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config)
  return json.loads(json.dumps({k: v for k, v in fields.items() if k not in RUNTIME_FIELDS}))


@dataclasses.dataclass
class AdapterFile:
  """An adapter as read from (or about to be written to) a directory."""

  method: Dict[str, Any]  # the run's `method` config section
  tensors: Dict[str, np.ndarray]  # flat variable path -> array
  base: Dict[str, Any]  # {"kind", "architecture", "fingerprint"}
  vocabulary: Dict[str, Any]  # {"kind", "fingerprint"}
  tasks: Dict[str, int] = dataclasses.field(default_factory=dict)  # name -> task id
  num_tasks: int = 1
  # How the run decoded in its evaluation (input length, batch size, method, length): the
  # defaults of a decode with this adapter, so it decodes as the run did.
  decoding: Dict[str, Any] = dataclasses.field(default_factory=dict)
  source: str = ""  # where it was read from, for messages

  def tree(self) -> Dict[str, Any]:
    """The tensors as a variables tree ({'adapters': {...}})."""
    return unflatten(self.tensors)


def save(adapter: AdapterFile, directory: str, overwrite: bool = False) -> str:
  """Writes `adapter` into `directory` (created) and returns it. Both files are written into a
  temporary directory first and moved in together, so a failed save leaves nothing half
  written; an existing adapter is kept unless `overwrite`."""
  from safetensors.numpy import save_file

  if not adapter.tensors:
    raise ValueError("an adapter with no tensors cannot be saved")
  target = os.path.join(directory, TENSORS_FILE)
  if os.path.exists(target) and not overwrite:
    raise FileExistsError(f"{target} exists; choose another directory or pass overwrite")
  os.makedirs(directory, exist_ok=True)
  config = {
    "format": FORMAT,
    "format_version": FORMAT_VERSION,
    "method": adapter.method,
    "tasks": dict(adapter.tasks),
    "num_tasks": int(adapter.num_tasks),
    "decoding": dict(adapter.decoding),
    "base": adapter.base,
    "vocabulary": adapter.vocabulary,
    "tensors": {
      k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(adapter.tensors.items())
    },
  }
  staging = tempfile.mkdtemp(prefix=".adapter-", dir=directory)
  try:
    save_file(
      {k: np.ascontiguousarray(v) for k, v in adapter.tensors.items()},
      os.path.join(staging, TENSORS_FILE),
      metadata={"format": FORMAT},
    )
    with open(os.path.join(staging, CONFIG_FILE), "w") as f:
      json.dump(config, f, indent=2, sort_keys=True)
      f.write("\n")
    for name in (TENSORS_FILE, CONFIG_FILE):
      os.replace(os.path.join(staging, name), os.path.join(directory, name))
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return directory


def _field(config: Mapping[str, Any], name: str, path: str):
  if name not in config:
    raise AdapterMismatch(f"{path}: missing field {name!r}")
  return config[name]


def load(directory: str) -> AdapterFile:
  """Reads an adapter directory; refuses a missing file, another format or version, and tensors
  that disagree with the config's list."""
  from safetensors.numpy import load_file

  config_path = os.path.join(directory, CONFIG_FILE)
  tensors_path = os.path.join(directory, TENSORS_FILE)
  for path in (config_path, tensors_path):
    if not os.path.isfile(path):
      raise FileNotFoundError(f"not an adapter directory: {path} is missing")
  try:
    with open(config_path) as f:
      config = json.load(f)
  except json.JSONDecodeError as e:
    raise AdapterMismatch(f"{config_path}: not valid JSON (line {e.lineno}: {e.msg})") from None
  if config.get("format") != FORMAT:
    raise AdapterMismatch(f"{config_path}: format is {config.get('format')!r}, not {FORMAT!r}")
  version = config.get("format_version")
  if version != FORMAT_VERSION:
    raise AdapterMismatch(
      f"{config_path}: format_version {version!r}; this code reads version {FORMAT_VERSION}"
    )
  listed = _field(config, "tensors", config_path)
  try:
    tensors = load_file(tensors_path)
  except Exception as e:  # safetensors raises its own error types for damaged files
    raise AdapterMismatch(f"{tensors_path}: unreadable ({' '.join(str(e).split())})") from None
  for key in sorted(set(listed) | set(tensors)):
    if key not in tensors:
      raise AdapterMismatch(f"{tensors_path}: tensor {key!r} listed in {CONFIG_FILE} is missing")
    if key not in listed:
      raise AdapterMismatch(f"{tensors_path}: tensor {key!r} is not listed in {CONFIG_FILE}")
    want = (tuple(listed[key]["shape"]), listed[key]["dtype"])
    got = (tuple(tensors[key].shape), str(tensors[key].dtype))
    if want != got:
      raise AdapterMismatch(f"{tensors_path}: tensor {key!r} is {got}, {CONFIG_FILE} says {want}")
  return AdapterFile(
    method=dict(_field(config, "method", config_path)),
    tensors=tensors,
    base=dict(_field(config, "base", config_path)),
    vocabulary=dict(_field(config, "vocabulary", config_path)),
    tasks={str(k): int(v) for k, v in config.get("tasks", {}).items()},
    num_tasks=int(config.get("num_tasks", 1)),
    decoding=dict(config.get("decoding", {})),
    source=os.path.abspath(directory),
  )


def check_fits(
  adapter: AdapterFile,
  expected: Mapping[str, Any],
  base_kind: str,
  base_architecture: Mapping[str, Any],
  base_fingerprint: Optional[str],
  vocabulary_fingerprint: Optional[str] = None,
  allow_different_base: bool = False,
) -> None:
  """Refuses `adapter` on a base it does not fit, naming the key or field.

  `expected` is the trainable variables tree the rebuilt model wants (arrays or shape structs);
  every key must be present, with its shape and dtype, and nothing else. The architecture must be
  equal field by field. The base weights' fingerprint must be equal unless `allow_different_base`
  (another base of the same architecture, e.g. a further-trained one). A given vocabulary
  fingerprint must be equal, since a token id means a row of the table.
  """
  src = adapter.source or "the adapter"
  if adapter.base.get("kind") != base_kind:
    raise AdapterMismatch(
      f"{src}: base.kind is {adapter.base.get('kind')!r}, the base given is {base_kind!r}"
    )
  saved_arch = adapter.base.get("architecture", {})
  for field in sorted(set(saved_arch) | set(base_architecture)):
    if saved_arch.get(field) != base_architecture.get(field):
      raise AdapterMismatch(
        f"{src}: base.architecture.{field} is {saved_arch.get(field)!r}, the base given has "
        f"{base_architecture.get(field)!r}"
      )
  if base_fingerprint is not None and adapter.base.get("fingerprint") != base_fingerprint:
    if not allow_different_base:
      raise AdapterMismatch(
        f"{src}: base.fingerprint {adapter.base.get('fingerprint')} differs from the given base's "
        f"weights ({base_fingerprint}): it was trained on another base of this shape. Pass "
        f"--allow-different-base to load it anyway"
      )
  saved_vocab = adapter.vocabulary.get("fingerprint")
  if vocabulary_fingerprint is not None and saved_vocab != vocabulary_fingerprint:
    raise AdapterMismatch(
      f"{src}: vocabulary.fingerprint {saved_vocab} differs from the given vocabulary's "
      f"({vocabulary_fingerprint}): token ids would mean other words"
    )
  want = flatten(expected, as_numpy=False)
  for key in sorted(want):
    if key not in adapter.tensors:
      raise AdapterMismatch(f"{src}: missing tensor {key!r} (the method {_name(adapter)} has it)")
  for key in sorted(adapter.tensors):
    if key not in want:
      raise AdapterMismatch(
        f"{src}: unexpected tensor {key!r}: the method {_name(adapter)} on this base has no "
        f"such variable"
      )
    got, ref = adapter.tensors[key], want[key]
    if tuple(got.shape) != tuple(ref.shape):
      raise AdapterMismatch(
        f"{src}: tensor {key!r} has shape {tuple(got.shape)}, the model wants {tuple(ref.shape)}"
      )
    if np.dtype(got.dtype) != np.dtype(ref.dtype):
      raise AdapterMismatch(
        f"{src}: tensor {key!r} has dtype {got.dtype}, the model wants {np.dtype(ref.dtype)}"
      )


def _name(adapter: AdapterFile) -> str:
  return repr(adapter.method.get("name"))
