"""A Hugging Face model directory as written by `save_pretrained`: `config.json` and the weights,
in one `model.safetensors` or in shards listed by `model.safetensors.index.json`.

Shared by the readers of every model family (`hf_t5`, `hf_vit`, `hf_gemma`); tensors are read lazily
with numpy (no torch), so a reader can check names and shapes before touching data.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Tuple

import numpy as np

from adalink.convert import safetensors_io

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


class HfTensors:
  """Name -> tensor over one safetensors file or the shards of an index."""

  def __init__(self, directory: str):
    index_path = os.path.join(directory, INDEX_FILE)
    single = os.path.join(directory, WEIGHTS_FILE)
    self._files: Dict[str, safetensors_io.SafetensorsFile] = {}
    self._where: Dict[str, str] = {}
    if os.path.isfile(index_path):
      with open(index_path, encoding="utf-8") as f:
        try:
          weight_map = json.load(f)["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
          raise ValueError(
            f"{index_path}: not a safetensors index (need a 'weight_map'): {e!r}"
          ) from None
      for name, shard in weight_map.items():
        shard_path = os.path.join(directory, shard)
        if shard not in self._files:
          if not os.path.isfile(shard_path):
            raise ValueError(
              f"{index_path}: shard {shard!r} (holding {name!r}) does not exist at {shard_path}"
            )
          self._files[shard] = safetensors_io.SafetensorsFile(shard_path)
        if name not in self._files[shard]:
          raise ValueError(f"{index_path}: {name!r} is mapped to {shard!r}, which lacks it")
        self._where[name] = shard
    elif os.path.isfile(single):
      f = safetensors_io.SafetensorsFile(single)
      self._files[WEIGHTS_FILE] = f
      self._where = {name: WEIGHTS_FILE for name in f.keys()}
    else:
      others = sorted(
        n
        for n in os.listdir(directory)
        if n.endswith((".bin", ".pt", ".h5", ".msgpack", ".safetensors"))
      )
      hint = (
        f"; found {others}: convert them to safetensors first (transformers' "
        "save_pretrained writes safetensors by default)"
        if others
        else ""
      )
      raise ValueError(f"{directory}: no {WEIGHTS_FILE} or {INDEX_FILE}{hint}")

  def names(self) -> List[str]:
    return list(self._where)

  def shape(self, name: str) -> Tuple[int, ...]:
    return self._files[self._where[name]].shape(name)

  def get(self, name: str) -> np.ndarray:
    return self._files[self._where[name]].get(name)


def read_config_json(directory: str) -> Dict[str, Any]:
  path = os.path.join(directory, CONFIG_FILE)
  if not os.path.isfile(path):
    raise ValueError(f"{directory}: no {CONFIG_FILE} (not a Hugging Face model directory)")
  with open(path, encoding="utf-8") as f:
    try:
      cfg = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid JSON: {e}") from None
  if not isinstance(cfg, dict):
    raise ValueError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
  return cfg
