"""`ModelFamily` (what the trainer needs from one kind of model) and the `FAMILIES` registry.

The family modules beside this one build a `ModelFamily` each and register it here; the package
imports them, so importing `adalink.train.model_families` registers every built-in family.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

from adalink.registry import Registry

FAMILIES: Registry["ModelFamily"] = Registry("model family", field="model.kind")


def _no_images(model_cfg) -> None:
  del model_cfg
  return None


@dataclasses.dataclass(frozen=True)
class ModelFamily:
  """One kind of model, as the trainer uses it.

  make_config: run config -> model config, validated (a bad field raises naming it).
  load_base: (run config, model config, checkpoints) -> the frozen base params; `checkpoints`
    maps `"model.checkpoint"` and each of `extra_checkpoints` to a resolved existing path, or
    None (random init from `model.init_seed`).
  build_model: (model config, method spec) -> the PEFT-wrapped Flax module; refuses a method
    the model cannot run.
  text_config: model config -> its T5Config-like text part (`d_model`, `vocab_size`).
  input_streams: what every batch carries for the model (a data family must provide the same).
  image_size: model config -> the image size its batches need (None: no images).
  extra_checkpoints: further optional config fields naming weight files (e.g. the ViT's).
  activation_bytes: (model config, rows per device, inputs, targets, model-axis ways) -> the
    activations a training step keeps per device, for the memory planner (None: T5's count).
  """

  name: str
  make_config: Callable[[Any], Any]
  load_base: Callable[[Any, Any, Mapping[str, Optional[str]]], Dict[str, Any]]
  build_model: Callable[[Any, Any], Any]
  text_config: Callable[[Any], Any]
  input_streams: Tuple[str, ...] = ("text",)
  image_size: Callable[[Any], Optional[Union[int, Tuple[int, int]]]] = _no_images
  extra_checkpoints: Tuple[str, ...] = ()
  activation_bytes: Optional[Callable[[Any, int, int, int, int], int]] = None


def register(family: ModelFamily, *, replace: bool = False) -> ModelFamily:
  if not family.input_streams:
    raise ValueError(f"model family {family.name!r} declares no input_streams")
  return FAMILIES.register(family.name, family, replace=replace)
