"""Hugging Face ViT and SigLIP vision directories -> the tree `adalink.models.vit.ViT` builds.

Read with `load_hf_vit` (a directory holding one vision tower) or `read_hf_vision_tower` (the
tower inside a multimodal directory); the checks and the conversion itself are `vit_plan`'s.
Nothing here imports torch or TensorFlow.

A directory holds `config.json` plus `model.safetensors` (or shards with
`model.safetensors.index.json`). Linear weights are stored (out, in) and are transposed; the patch
projection is a conv weight (width, C, p, p).
* `model_type: "vit"` (`ViTModel`; a `ViTForImageClassification` stores it under `vit.`):
    embeddings.cls_token (1, 1, w), embeddings.position_embeddings (1, N + 1, w) (row 0 is the
    [CLS] position), embeddings.patch_embeddings.projection.{weight, bias},
    encoder.layer.{i}.layernorm_before / layernorm_after .{weight, bias},
    encoder.layer.{i}.attention.attention.{query, key, value}.{weight, bias} (biases absent
    when `qkv_bias` is false: read as zeros), encoder.layer.{i}.attention.output.dense,
    encoder.layer.{i}.intermediate.dense (fc1), encoder.layer.{i}.output.dense (fc2),
    layernorm.{weight, bias}. Ignored: pooler.dense.*, embeddings.mask_token.
    Defaults for absent config fields are `transformers.ViTConfig`'s (exact GELU, eps 1e-12).
* `model_type: "siglip_vision_model"` (`SiglipVisionModel`), or `"siglip"` (`SiglipModel`,
    whose `vision_config` and `vision_model.` tensors are read; the text tower is ignored):
    embeddings.patch_embedding.{weight, bias}, embeddings.position_embedding.weight (N, w),
    encoder.layers.{i}.layer_norm1 / layer_norm2, encoder.layers.{i}.self_attn.{q, k, v,
    out}_proj, encoder.layers.{i}.mlp.fc1 / fc2, post_layernorm. Ignored: the attention-pooling
    head `head.*`. Defaults are `transformers.SiglipVisionConfig`'s (tanh GELU, eps 1e-6).
The prefix in front of these names (none, `vit.`, `vision_model.`, ...) is found from the
patch-embedding tensor's name.
HF ViT adds position embedding 0 to the [CLS] token; the project's `cls` is stored with it
already added (big_vision's convention), so `cls = cls_token + position_embeddings[0, 0]`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from adalink.convert import hf_dir, vit_plan
from adalink.models import vit as vit_lib

CONFIG_FILE = hf_dir.CONFIG_FILE
HF_VIT, HF_SIGLIP = "vit", "siglip"
MODEL_TYPES = ("vit", "siglip_vision_model", "siglip")

# Hugging Face activation names -> the project's (`adalink.models.layers`). "gelu" in
# transformers is the exact erf form; the others are the tanh approximation.
_HF_TO_ACT = {
  "gelu": "gelu_exact",
  "gelu_new": "gelu",
  "gelu_pytorch_tanh": "gelu",
  "gelu_fast": "gelu",
}

# transformers' config defaults for fields a config.json may leave out: both families default to
# ViT-B/16 at 224 pixels and differ in the activation, the layer-norm epsilon and the qkv bias flag.
_HF_B16_224 = dict(
  hidden_size=768,
  num_hidden_layers=12,
  num_attention_heads=12,
  intermediate_size=3072,
  image_size=224,
  patch_size=16,
  num_channels=3,
)
_HF_DEFAULTS = {
  HF_VIT: dict(_HF_B16_224, hidden_act="gelu", layer_norm_eps=1e-12, qkv_bias=True),
  HF_SIGLIP: dict(_HF_B16_224, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6),
}
# The tensor whose name reveals the prefix, and the tensors under it that are not read.
_HF_ANCHOR = {
  HF_VIT: "embeddings.patch_embeddings.projection.weight",
  HF_SIGLIP: "embeddings.patch_embedding.weight",
}
_HF_IGNORED = {HF_VIT: ("pooler.", "embeddings.mask_token"), HF_SIGLIP: ("head.",)}


def _transpose(a: np.ndarray) -> np.ndarray:
  return a.T


def _conv_to_patch_kernel(config: vit_lib.ViTConfig) -> Callable[[np.ndarray], np.ndarray]:
  """(w, C, p, p) torch conv weight -> (p * p * C, w), rows in (row, column, channel) order."""
  p, c = config.patch_size, config.num_channels
  return lambda a: a.transpose(2, 3, 1, 0).reshape(p * p * c, config.width)


def _hf_int(cfg: Mapping[str, Any], key: str, source: str, square: bool = False) -> int:
  value = cfg[key]
  if square and isinstance(value, (list, tuple)):
    if len(value) != 2 or value[0] != value[1]:
      raise ValueError(
        f"{source}: {key} {value!r} is not square; only square images and patches are supported"
      )
    value = value[0]
  if not isinstance(value, int) or isinstance(value, bool):
    raise ValueError(f"{source}: {key} must be an integer, got {value!r}")
  return value


def config_from_hf(
  cfg: Mapping[str, Any], source: str = CONFIG_FILE
) -> Tuple[vit_lib.ViTConfig, str, bool, str]:
  """(ViTConfig, family 'vit' or 'siglip', qkv_bias, tensor-name prefix hint) from a parsed
  `config.json`. For a full `siglip` config the vision part is read and the hint is
  'vision_model.' (where `SiglipModel` keeps the vision tower)."""
  model_type = cfg.get("model_type")
  hint = ""
  if model_type == "siglip":
    sub = cfg.get("vision_config") or {}
    if not isinstance(sub, dict):
      raise ValueError(f"{source}: vision_config must be a JSON object, got {sub!r}")
    sub_type = sub.get("model_type", "siglip_vision_model")
    if sub_type != "siglip_vision_model":
      raise ValueError(
        f"{source}: vision_config.model_type {sub_type!r} is not 'siglip_vision_model'"
      )
    cfg, family, source, hint = sub, HF_SIGLIP, f"{source} (vision_config)", "vision_model."
  elif model_type == "siglip_vision_model":
    family = HF_SIGLIP
  elif model_type == "vit":
    family = HF_VIT
  else:
    raise ValueError(
      f"{source}: model_type {model_type!r} is not a supported ViT; supported: {MODEL_TYPES}"
    )
  full = {**_HF_DEFAULTS[family], **{k: v for k, v in cfg.items() if v is not None}}
  act = full["hidden_act"]
  if act not in _HF_TO_ACT:
    raise ValueError(
      f"{source}: hidden_act {act!r} is not supported; supported: {sorted(_HF_TO_ACT)}"
    )
  width, heads = _hf_int(full, "hidden_size", source), _hf_int(full, "num_attention_heads", source)
  head_dim = cfg.get("head_dim")
  if head_dim is not None and (not isinstance(head_dim, int) or heads * head_dim != width):
    raise ValueError(
      f"{source}: head_dim {head_dim!r} x num_attention_heads {heads} != "
      f"hidden_size {width}; only head_dim = hidden_size / heads is supported"
    )
  qkv_bias = full.get("qkv_bias", True)
  if not isinstance(qkv_bias, bool):
    raise ValueError(f"{source}: qkv_bias must be true or false, got {qkv_bias!r}")
  try:
    config = vit_lib.ViTConfig(
      image_size=_hf_int(full, "image_size", source, square=True),
      patch_size=_hf_int(full, "patch_size", source, square=True),
      width=width,
      depth=_hf_int(full, "num_hidden_layers", source),
      mlp_dim=_hf_int(full, "intermediate_size", source),
      num_heads=heads,
      num_channels=_hf_int(full, "num_channels", source),
      use_cls_token=family == HF_VIT,
      activation=_HF_TO_ACT[act],
      layer_norm_eps=float(full["layer_norm_eps"]),
    )
  except (ValueError, TypeError) as e:
    raise ValueError(f"{source}: {e}") from None
  return config, family, qkv_bias, hint


def _hf_prefix(names: Sequence[str], family: str, hint: str, source: str) -> str:
  anchor = _HF_ANCHOR[family]
  found = sorted(n[: -len(anchor)] for n in names if n == anchor or n.endswith("." + anchor))
  if hint + anchor in names:
    return hint
  if len(found) == 1:
    return found[0]
  if not found:
    raise ValueError(
      f"{source}: no tensor {anchor!r} (with or without a prefix such as "
      f"'vision_model.'); not a {family} checkpoint? Tensors start with: "
      f"{sorted(names)[:6]}"
    )
  raise ValueError(
    f"{source}: several vision towers ({[p + anchor for p in found]}); this "
    "reader takes a directory holding one"
  )


def _hf_linear(
  plan: vit_plan.Plan,
  wanted: Dict[str, Tuple[int, ...]],
  path: str,
  name: str,
  d_in: int,
  d_out: int,
  has_bias: bool = True,
) -> None:
  wanted[f"{name}.weight"] = (d_out, d_in)
  plan[f"{path}/kernel"] = ((f"{name}.weight",), _transpose)
  if has_bias:
    wanted[f"{name}.bias"] = (d_out,)
    plan[f"{path}/bias"] = ((f"{name}.bias",), vit_plan.identity)
  else:
    plan[f"{path}/bias"] = ((), lambda: np.zeros((d_out,), np.float32))


def _hf_norm(
  plan: vit_plan.Plan, wanted: Dict[str, Tuple[int, ...]], path: str, name: str, width: int
) -> None:
  for ours, theirs in (("scale", "weight"), ("bias", "bias")):
    wanted[f"{name}.{theirs}"] = (width,)
    plan[f"{path}/{ours}"] = ((f"{name}.{theirs}",), vit_plan.identity)


def hf_plan(
  config: vit_lib.ViTConfig, family: str, prefix: str = "", qkv_bias: bool = True
) -> Tuple[vit_plan.Plan, Dict[str, Tuple[int, ...]]]:
  """(plan, Hugging Face tensor name -> expected shape) for `config` in the `family` layout."""
  c = config
  w, m, p, ch, n = c.width, c.mlp_dim, c.patch_size, c.num_channels, c.num_patches
  plan: vit_plan.Plan = {}
  wanted: Dict[str, Tuple[int, ...]] = {}
  e = f"{prefix}embeddings."
  patch = f"{e}patch_embeddings.projection" if family == HF_VIT else f"{e}patch_embedding"
  wanted[f"{patch}.weight"] = (w, ch, p, p)
  wanted[f"{patch}.bias"] = (w,)
  plan["embedding/kernel"] = ((f"{patch}.weight",), _conv_to_patch_kernel(c))
  plan["embedding/bias"] = ((f"{patch}.bias",), vit_plan.identity)
  if family == HF_VIT:
    pos, cls = f"{e}position_embeddings", f"{e}cls_token"
    wanted[pos] = (1, n + 1, w)
    wanted[cls] = (1, 1, w)
    plan["pos_embedding"] = ((pos,), lambda a: a[0, 1:])
    plan["cls"] = ((cls, pos), lambda t, a: t[0, 0] + a[0, 0])
    layer, final = f"{prefix}encoder.layer", f"{prefix}layernorm"
    parts = {
      "pre_attention_layer_norm": "layernorm_before",
      "pre_mlp_layer_norm": "layernorm_after",
      "attention/query": "attention.attention.query",
      "attention/key": "attention.attention.key",
      "attention/value": "attention.attention.value",
      "attention/out": "attention.output.dense",
      "mlp/wi": "intermediate.dense",
      "mlp/wo": "output.dense",
    }
  else:
    pos = f"{e}position_embedding.weight"
    wanted[pos] = (n, w)
    plan["pos_embedding"] = ((pos,), vit_plan.identity)
    layer, final = f"{prefix}encoder.layers", f"{prefix}post_layernorm"
    parts = {
      "pre_attention_layer_norm": "layer_norm1",
      "pre_mlp_layer_norm": "layer_norm2",
      "attention/query": "self_attn.q_proj",
      "attention/key": "self_attn.k_proj",
      "attention/value": "self_attn.v_proj",
      "attention/out": "self_attn.out_proj",
      "mlp/wi": "mlp.fc1",
      "mlp/wo": "mlp.fc2",
    }
  for i in range(c.depth):
    ours, theirs = f"encoder/layers_{i}", f"{layer}.{i}"
    for part in ("pre_attention_layer_norm", "pre_mlp_layer_norm"):
      _hf_norm(plan, wanted, f"{ours}/{part}", f"{theirs}.{parts[part]}", w)
    for part in ("attention/query", "attention/key", "attention/value"):
      _hf_linear(plan, wanted, f"{ours}/{part}", f"{theirs}.{parts[part]}", w, w, qkv_bias)
    _hf_linear(plan, wanted, f"{ours}/attention/out", f"{theirs}.{parts['attention/out']}", w, w)
    _hf_linear(plan, wanted, f"{ours}/mlp/wi", f"{theirs}.{parts['mlp/wi']}", w, m)
    _hf_linear(plan, wanted, f"{ours}/mlp/wo", f"{theirs}.{parts['mlp/wo']}", m, w)
  _hf_norm(plan, wanted, "encoder/encoder_norm", final, w)
  return plan, wanted


def load_hf_vit(
  directory: str, config: Optional[vit_lib.ViTConfig] = None
) -> Tuple[vit_lib.ViTConfig, Dict[str, Any]]:
  """(ViTConfig, params) from a Hugging Face ViT or SigLIP(-vision) directory.

  `config`, when given, must agree with `config.json` on every architecture field
  (`adalink.models.vit.ARCHITECTURE_FIELDS`) and is returned as given, so a caller picks
  `pooling`, `keep_cls_token` and `dtype`.
  """
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    raise ValueError(
      f"{directory}: not a directory (expected a Hugging Face model directory "
      f"with {CONFIG_FILE} and model.safetensors)"
    )
  source = os.path.join(directory, CONFIG_FILE)
  file_config, family, qkv_bias, hint = config_from_hf(hf_dir.read_config_json(directory), source)
  if config is not None:
    vit_plan.check_same_architecture(file_config, config, directory)
  out_config = config if config is not None else file_config
  params = _read_tower(hf_dir.HfTensors(directory), file_config, family, qkv_bias, hint, directory)
  return out_config, params


def read_hf_vision_tower(
  tensors: hf_dir.HfTensors, vision_config: Mapping[str, Any], source: str
) -> Tuple[vit_lib.ViTConfig, Dict[str, Any]]:
  """(ViTConfig, params) of the one vision tower inside a multimodal Hugging Face directory
  (e.g. PaliGemma's `vision_tower.`), from its `vision_config` (a parsed dict); tensors outside
  the tower's prefix are left to the caller."""
  config, family, qkv_bias, hint = config_from_hf(vision_config, f"{source} (vision_config)")
  return config, _read_tower(tensors, config, family, qkv_bias, hint, source)


def _read_tower(
  tensors: hf_dir.HfTensors,
  config: vit_lib.ViTConfig,
  family: str,
  qkv_bias: bool,
  hint: str,
  source: str,
) -> Dict[str, Any]:
  """The params of the one `family` tower among `tensors` (what `config_from_hf` said of it)."""
  names = tensors.names()
  prefix = _hf_prefix(names, family, hint, source)
  plan, wanted = hf_plan(config, family, prefix, qkv_bias)
  # With a prefix, tensors outside it (a text tower, a classifier) are not the ViT's business.
  found = {n: tuple(tensors.shape(n)) for n in names if n.startswith(prefix)}
  ignored = tuple(prefix + s for s in _HF_IGNORED[family])
  return vit_plan.assemble(plan, wanted, found, tensors.get, config, source, ignored)
