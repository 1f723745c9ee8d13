"""Readers (and writers) of outside T5 checkpoint formats: Hugging Face safetensors and T5X.

`load_checkpoint(path)` tells the formats apart and returns `(T5Config, params)`, params being a
nested dict of float32 numpy arrays in the tree `adalink.models.t5.T5` builds.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Tuple, Union

from adalink.convert import hf_t5, t5x, tree
from adalink.convert.hf_t5 import load_hf_t5, save_hf_t5
from adalink.convert.t5x import load_t5x, save_t5x, save_t5x_dir
from adalink.models import t5

__all__ = [
  "load_checkpoint",
  "detect_format",
  "load_hf_t5",
  "save_hf_t5",
  "load_t5x",
  "save_t5x",
  "save_t5x_dir",
]

HF, T5X = "hf", "t5x"


def detect_format(path: str) -> str:
  """'hf' for a directory with `config.json` (or a file inside one ending in .safetensors),
  't5x' for a T5X checkpoint file or a `checkpoint_N` directory holding `checkpoint`."""
  path = os.fspath(path)
  if os.path.isdir(path):
    has_hf = os.path.isfile(os.path.join(path, hf_t5.CONFIG_FILE))
    has_t5x = os.path.isfile(os.path.join(path, t5x.CHECKPOINT_FILE))
    if has_hf and has_t5x:
      raise ValueError(
        f"{path} holds both a Hugging Face '{hf_t5.CONFIG_FILE}' and a T5X "
        f"'{t5x.CHECKPOINT_FILE}' file; pass the T5X file itself to read that one"
      )
    if has_hf:
      return HF
    if has_t5x:
      return T5X
    # A T5X model directory (checkpoint_N subfolders) gets t5x's own error listing the steps.
    if any(d.startswith("checkpoint_") for d in os.listdir(path)):
      return T5X
    raise ValueError(
      f"{path}: not a checkpoint directory: looked for '{hf_t5.CONFIG_FILE}' "
      f"(Hugging Face) and '{t5x.CHECKPOINT_FILE}' or 'checkpoint_N/"
      f"{t5x.CHECKPOINT_FILE}' (T5X)"
    )
  if os.path.isfile(path):
    name = os.path.basename(path)
    if name.endswith(".safetensors") or name in (hf_t5.CONFIG_FILE, hf_t5.INDEX_FILE):
      return HF
    return T5X
  raise ValueError(f"checkpoint path {path} does not exist")


def load_checkpoint(
  path: str, config: Union[t5.T5Config, str, None] = None
) -> Tuple[t5.T5Config, Dict[str, Any]]:
  """(T5Config, params) from a Hugging Face T5 directory or a T5X checkpoint.

  `config` (a T5Config or a size name) is checked against the checkpoint: for Hugging Face its
  architecture must equal `config.json`'s, for T5X every shape must match. Without it the config
  comes from `config.json` or is inferred from the T5X shapes.
  """
  fmt = detect_format(path)
  if fmt == HF:
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    return load_hf_t5(directory, None if config is None else tree.resolve_config(config))
  return load_t5x(path, config)
