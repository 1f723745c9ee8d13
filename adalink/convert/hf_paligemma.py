"""Hugging Face PaliGemma and PaliGemma 2 checkpoints -> the project's PaliGemma.

A `PaliGemmaForConditionalGeneration` directory (`config.json` + safetensors, one file or shards,
float32 / float16 / bfloat16) holds three parts, each read by the reader of its own model:
  * `vision_tower.` (or `model.vision_tower.`): a SigLIP vision tower, `config.vision_config`
    (`adalink.convert.hf_vit`); its unused attention-pooling `head.` is ignored;
  * `multi_modal_projector.linear.{weight, bias}`: the projection (weight stored (out, in));
  * `language_model.model.` (or `model.language_model.`): a Gemma (PaliGemma) or Gemma 2
    (PaliGemma 2) decoder, `config.text_config` (`adalink.convert.hf_gemma`), read with the full
    prefix attention PaliGemma uses.
Every missing, mis-shaped or unexpected tensor is refused by name.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from adalink.convert import hf_dir, hf_gemma, hf_vit, tree, vit_plan
from adalink.models import paligemma

MODEL_TYPE = "paligemma"
_PROJECTION = "multi_modal_projector.linear"
# Where transformers 4 / the original export (first) and transformers 5 modules (second) put each
# part; a directory uses one layout throughout.
_LAYOUTS = (
  ("language_model.model.", ""),
  ("model.language_model.", "model."),
)


def _sub(cfg: Mapping[str, Any], key: str, source: str) -> Dict[str, Any]:
  sub = cfg.get(key)
  if not isinstance(sub, dict):
    raise ValueError(f"{source}: {key} must be a JSON object, got {sub!r}")
  return sub


def config_from_hf(
  cfg: Mapping[str, Any], source: str = hf_dir.CONFIG_FILE
) -> Tuple[paligemma.PaliGemmaConfig, Dict[str, Any]]:
  """(PaliGemmaConfig, the raw vision_config) from a parsed PaliGemma `config.json`."""
  if cfg.get("model_type") != MODEL_TYPE:
    raise ValueError(
      f"{source}: model_type {cfg.get('model_type')!r} is not {MODEL_TYPE!r} (PaliGemma)"
    )
  text_cfg = _sub(cfg, "text_config", source)
  vision_cfg = _sub(cfg, "vision_config", source)
  text = hf_gemma.config_from_hf(text_cfg, f"{source} (text_config)")
  text = text.replace(prefix_attention="full")
  vision, _, _, _ = hf_vit.config_from_hf(vision_cfg, f"{source} (vision_config)")
  projection_dim = vision_cfg.get("projection_dim", cfg.get("projection_dim"))
  if projection_dim is not None and projection_dim != text.d_model:
    raise ValueError(
      f"{source}: projection_dim {projection_dim} differs from the text width "
      f"{text.d_model}; the projection must map the image tokens to the decoder's width"
    )
  return paligemma.PaliGemmaConfig(text, vision.replace(dtype=text.dtype)), vision_cfg


def read_params(
  tensors: hf_dir.HfTensors, config: paligemma.PaliGemmaConfig, vision_cfg, source: str
) -> Dict[str, Any]:
  names = set(tensors.names())
  layout = [(t, p) for t, p in _LAYOUTS if f"{t}embed_tokens.weight" in names]
  if len(layout) != 1:
    raise ValueError(
      f"{source}: no language model found (looked for 'language_model.model.embed_tokens.weight' "
      f"and 'model.language_model.embed_tokens.weight'); tensors start with {sorted(names)[:6]}"
    )
  text_prefix, outer = layout[0]
  projection = f"{outer}{_PROJECTION}"
  vision_prefix = f"{outer}vision_tower."
  text_params = hf_gemma.read_params(
    tensors,
    config.text,
    source,
    prefix=text_prefix,
    allow_extra=(vision_prefix, projection + "."),
  )
  _, vit_params = hf_vit.read_hf_vision_tower(tensors, vision_cfg, source)
  wanted = {
    f"{projection}.weight": (config.text.d_model, config.vision.width),
    f"{projection}.bias": (config.text.d_model,),
  }
  tree.check_shapes(
    {n: tensors.shape(n) for n in wanted if n in names}, wanted, source, allow_extra=True
  )
  kernel = tree.to_float32(tensors.get(f"{projection}.weight"), projection, source)
  bias = tree.to_float32(tensors.get(f"{projection}.bias"), projection, source)
  return {
    **text_params,
    "vit": vit_params,
    "image_projection": {"kernel": np.ascontiguousarray(kernel.T), "bias": bias},
  }


def load_hf_paligemma(
  directory: str, config: Optional[paligemma.PaliGemmaConfig] = None
) -> Tuple[paligemma.PaliGemmaConfig, Dict[str, Any]]:
  """(PaliGemmaConfig, params) from a Hugging Face PaliGemma / PaliGemma 2 directory; a given
  `config` must agree with the file on both towers' architecture and is returned as given."""
  directory = os.fspath(directory)
  source = os.path.join(directory, hf_dir.CONFIG_FILE)
  file_config, vision_cfg = config_from_hf(hf_dir.read_config_json(directory), source)
  if config is not None:
    hf_gemma.check_same_architecture(file_config.text, config.text, directory)
    vit_plan.check_same_architecture(file_config.vision, config.vision, directory)
  params = read_params(hf_dir.HfTensors(directory), file_config, vision_cfg, directory)
  return (config if config is not None else file_config), params
