"""Readers of pretrained ViT image encoders into the tree `adalink.models.vit.ViT` builds.

Parameters come back as float32 numpy arrays (nested dict, the `params` collection). Nothing here
imports torch or TensorFlow. Every tensor's shape is checked before any data is read: a missing or
mis-shaped tensor raises one ValueError naming each such key with its expected and found shape,
and a tensor the reader does not know (e.g. an extra block) is refused rather than dropped.

1. Hugging Face directories (`load_hf_vit`): `config.json` plus `model.safetensors` (or shards
   with `model.safetensors.index.json`). Linear weights are stored (out, in) and are transposed;
   the patch projection is a conv weight (width, C, p, p).
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

2. big_vision `.npz` files (`load_big_vision_npz`), the layout of big_vision `models/vit.py`
   (a Flax `nn.Conv` stem and `nn.MultiHeadDotProductAttention`), '/'-joined flat keys:
       embedding/kernel (p, p, C, w), embedding/bias (w,), pos_embedding (1, N, w), cls (1, 1, w)
       (only for [CLS] models; concatenated after the position embeddings are added),
       Transformer/encoderblock_{i}/LayerNorm_0 (pre-attention) and LayerNorm_1 (pre-MLP)
       /{scale, bias}, Transformer/encoderblock_{i}/MultiHeadDotProductAttention_0/{query, key,
       value}/kernel (w, heads, head_dim) and bias (heads, head_dim), .../out/kernel
       (heads, head_dim, w) and bias (w,), Transformer/encoderblock_{i}/MlpBlock_0/Dense_0 (fc1)
       and Dense_1 (fc2) /{kernel (in, out), bias}, Transformer/encoder_norm/{scale, bias}.
   Also read: the scanned layout (`Transformer/encoderblock/...`, every block stacked on a leading
   depth axis, as PaliGemma stores it); pre-Linen names of the original ViT release
   (LayerNorm_0, MultiHeadDotProductAttention_1, LayerNorm_2, MlpBlock_3);
   `Transformer/posembed_input/pos_embedding` or `Transformer/pos_embedding` instead of
   `pos_embedding`, and a (1, N + 1, w) table whose row 0 belongs to `cls` (folded into it).
   Ignored: what sits on top of the encoder (head/: a classifier, or PaliGemma's projection to
   the language model; pre_logits/; MAPHead_0/). A checkpoint holding more than the image
   tower names it under a prefix, e.g. `params/img/` (SigLIP) or `img/` (PaliGemma); the prefix
   is the one in front of both `embedding/kernel` and `Transformer/encoder_norm/scale` (pass
   `prefix=` when several towers qualify). An .npz holds no config: the caller names it.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import flax.linen as nn
import numpy as np
from numpy.lib import format as npy_format

from adalink.convert import hf_dir, tree
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

# transformers' config defaults for fields a config.json may leave out.
_HF_DEFAULTS = {
  HF_VIT: dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
    image_size=224,
    patch_size=16,
    num_channels=3,
    qkv_bias=True,
  ),
  HF_SIGLIP: dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act="gelu_pytorch_tanh",
    layer_norm_eps=1e-6,
    image_size=224,
    patch_size=16,
    num_channels=3,
  ),
}
# The tensor whose name reveals the prefix, and the tensors under it that are not read.
_HF_ANCHOR = {
  HF_VIT: "embeddings.patch_embeddings.projection.weight",
  HF_SIGLIP: "embeddings.patch_embedding.weight",
}
_HF_IGNORED = {HF_VIT: ("pooler.", "embeddings.mask_token"), HF_SIGLIP: ("head.",)}

# A plan maps each parameter path to (source keys, function of those arrays -> the parameter).
Plan = Dict[str, Tuple[Tuple[str, ...], Callable[..., np.ndarray]]]


def expected_shapes(config: vit_lib.ViTConfig) -> Dict[str, Tuple[int, ...]]:
  """'encoder/layers_0/attention/query/kernel' -> shape, for every parameter `config` builds."""
  abstract = vit_lib.abstract_params(config.replace(dtype="float32"))
  return {k: tuple(v.shape) for k, v in tree.flatten(nn.unbox(abstract)["params"]).items()}


def check_same_architecture(
  from_file: vit_lib.ViTConfig, given: vit_lib.ViTConfig, source: str
) -> None:
  """A caller-given config must describe the network the checkpoint holds."""
  diffs = [
    f"{f}: checkpoint {getattr(from_file, f)!r}, given {getattr(given, f)!r}"
    for f in vit_lib.ARCHITECTURE_FIELDS
    if getattr(from_file, f) != getattr(given, f)
  ]
  if diffs:
    raise ValueError(
      f"{source}: the given ViTConfig does not match the checkpoint's: " + "; ".join(diffs)
    )


def resolve_config(config: Any) -> vit_lib.ViTConfig:
  """A ViTConfig as given, or a named size (`adalink.models.vit.SIZES`)."""
  if isinstance(config, vit_lib.ViTConfig):
    return config
  if isinstance(config, str):
    return vit_lib.get_config(config)
  raise TypeError(
    f"config must be a ViTConfig or a size name from {sorted(vit_lib.SIZES)}, "
    f"got {type(config).__name__}: {config!r}"
  )


# ---------------------------------------------------------------------------------------------
# Shared plumbing: check shapes, refuse unknown tensors, then read and convert.


def _assemble(
  plan: Plan,
  wanted: Mapping[str, Tuple[int, ...]],
  found: Mapping[str, Tuple[int, ...]],
  read: Callable[[str], Any],
  config: vit_lib.ViTConfig,
  source: str,
  ignored: Sequence[str] = (),
  hint: str = "",
) -> Dict[str, Any]:
  """Checks `found` (every source tensor's shape, by key) against `wanted`, then builds the tree.

  `found` holds only the keys that belong to the ViT (already restricted to the prefix), so any
  key there that is neither wanted nor under an `ignored` prefix is unexpected.
  """
  tree.check_shapes({k: found[k] for k in wanted if k in found}, wanted, source, allow_extra=True)
  unexpected = sorted(k for k in found if k not in wanted and not k.startswith(tuple(ignored)))
  if unexpected:
    shown = "; ".join(f"{k!r} {tuple(found[k])}" for k in unexpected[:12])
    more = f"; ... and {len(unexpected) - 12} more" if len(unexpected) > 12 else ""
    raise ValueError(
      f"{source}: {len(unexpected)} tensor(s) this ViTConfig has no place for: {shown}{more}{hint}"
    )
  cache: Dict[str, np.ndarray] = {}

  def get(key: str) -> np.ndarray:
    if key not in cache:
      cache[key] = tree.to_float32(read(key), key, source)
    return cache[key]

  flat = {
    path: np.ascontiguousarray(fn(*(get(k) for k in keys)), dtype=np.float32)
    for path, (keys, fn) in plan.items()
  }
  # The plan is written by hand; make sure it builds exactly the model's tree.
  tree.check_shapes(
    {k: v.shape for k, v in flat.items()}, expected_shapes(config), f"{source} (after conversion)"
  )
  return tree.unflatten(flat)


def _ident(a: np.ndarray) -> np.ndarray:
  return a


def _transpose(a: np.ndarray) -> np.ndarray:
  return a.T


def _conv_to_patch_kernel(config: vit_lib.ViTConfig) -> Callable[[np.ndarray], np.ndarray]:
  """(w, C, p, p) torch conv weight -> (p * p * C, w), rows in (row, column, channel) order."""
  p, c = config.patch_size, config.num_channels
  return lambda a: a.transpose(2, 3, 1, 0).reshape(p * p * c, config.width)


# ---------------------------------------------------------------------------------------------
# Hugging Face


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
  plan: Plan,
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
    plan[f"{path}/bias"] = ((f"{name}.bias",), _ident)
  else:
    plan[f"{path}/bias"] = ((), lambda: np.zeros((d_out,), np.float32))


def _hf_norm(
  plan: Plan, wanted: Dict[str, Tuple[int, ...]], path: str, name: str, width: int
) -> None:
  for ours, theirs in (("scale", "weight"), ("bias", "bias")):
    wanted[f"{name}.{theirs}"] = (width,)
    plan[f"{path}/{ours}"] = ((f"{name}.{theirs}",), _ident)


def hf_plan(
  config: vit_lib.ViTConfig, family: str, prefix: str = "", qkv_bias: bool = True
) -> Tuple[Plan, Dict[str, Tuple[int, ...]]]:
  """(plan, Hugging Face tensor name -> expected shape) for `config` in the `family` layout."""
  c = config
  w, m, p, ch, n = c.width, c.mlp_dim, c.patch_size, c.num_channels, c.num_patches
  plan: Plan = {}
  wanted: Dict[str, Tuple[int, ...]] = {}
  e = f"{prefix}embeddings."
  patch = f"{e}patch_embeddings.projection" if family == HF_VIT else f"{e}patch_embedding"
  wanted[f"{patch}.weight"] = (w, ch, p, p)
  wanted[f"{patch}.bias"] = (w,)
  plan["embedding/kernel"] = ((f"{patch}.weight",), _conv_to_patch_kernel(c))
  plan["embedding/bias"] = ((f"{patch}.bias",), _ident)
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
    plan["pos_embedding"] = ((pos,), _ident)
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
    check_same_architecture(file_config, config, directory)
  out_config = config if config is not None else file_config

  tensors = hf_dir.HfTensors(directory)
  names = tensors.names()
  prefix = _hf_prefix(names, family, hint, directory)
  plan, wanted = hf_plan(file_config, family, prefix, qkv_bias)
  # With a prefix, tensors outside it (a text tower, a classifier) are not the ViT's business.
  found = {n: tuple(tensors.shape(n)) for n in names if n.startswith(prefix)}
  ignored = tuple(prefix + s for s in _HF_IGNORED[family])
  params = _assemble(plan, wanted, found, tensors.get, file_config, directory, ignored)
  return out_config, params


def read_hf_vision_tower(
  tensors: hf_dir.HfTensors, vision_config: Mapping[str, Any], source: str
) -> Tuple[vit_lib.ViTConfig, Dict[str, Any]]:
  """(ViTConfig, params) of the one vision tower inside a multimodal Hugging Face directory
  (e.g. PaliGemma's `vision_tower.`), from its `vision_config` (a parsed dict); tensors outside
  the tower's prefix are left to the caller."""
  config, family, qkv_bias, hint = config_from_hf(vision_config, f"{source} (vision_config)")
  names = tensors.names()
  prefix = _hf_prefix(names, family, hint, source)
  plan, wanted = hf_plan(config, family, prefix, qkv_bias)
  found = {n: tuple(tensors.shape(n)) for n in names if n.startswith(prefix)}
  ignored = tuple(prefix + s for s in _HF_IGNORED[family])
  return config, _assemble(plan, wanted, found, tensors.get, config, source, ignored)


# ---------------------------------------------------------------------------------------------
# big_vision .npz

_NPZ_ANCHORS = ("embedding/kernel", "Transformer/encoder_norm/scale")
# Where big_vision (today), big_vision before 2022 and the original ViT release keep the table.
_NPZ_POS = (
  "pos_embedding",
  "Transformer/pos_embedding",
  "Transformer/posembed_input/pos_embedding",
)
_NPZ_IGNORED = ("head/", "pre_logits/", "MAPHead_0/")
# Block sub-module names: Linen numbers each module type apart; pre-Linen Flax numbered all
# submodules of a block in creation order.
_LINEN = ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")
_PRE_LINEN = ("LayerNorm_0", "MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3")


def npz_shapes(path: str) -> Dict[str, Tuple[Tuple[int, ...], np.dtype]]:
  """key -> (shape, dtype) of every array in an .npz, from the .npy headers only (no data read)."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f"big_vision checkpoint {path} does not exist")
  out: Dict[str, Tuple[Tuple[int, ...], np.dtype]] = {}
  try:
    with zipfile.ZipFile(path) as zf:
      for info in zf.infolist():
        if not info.filename.endswith(".npy"):
          continue
        with zf.open(info) as f:
          version = npy_format.read_magic(f)
          if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(f)
          elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(f)
          else:
            raise ValueError(
              f"{path}: array {info.filename!r} uses .npy format version "
              f"{version}, expected 1.0 or 2.0"
            )
        out[info.filename[: -len(".npy")]] = (tuple(shape), dtype)
  except zipfile.BadZipFile:
    raise ValueError(f"{path}: not an .npz file (not a zip archive)") from None
  if not out:
    raise ValueError(f"{path}: no arrays in this .npz file")
  return out


def _npz_prefix(keys: Sequence[str], source: str) -> str:
  keyset = set(keys)
  candidates = sorted(
    k[: -len(_NPZ_ANCHORS[0])]
    for k in keys
    if (k == _NPZ_ANCHORS[0] or k.endswith("/" + _NPZ_ANCHORS[0]))
    and k[: -len(_NPZ_ANCHORS[0])] + _NPZ_ANCHORS[1] in keyset
  )
  if len(candidates) == 1:
    return candidates[0]
  if not candidates:
    raise ValueError(
      f"{source}: found no ViT: no prefix P with both 'P{_NPZ_ANCHORS[0]}' and "
      f"'P{_NPZ_ANCHORS[1]}' (P empty, 'params/', 'img/', 'params/img/', ...). "
      f"Keys start with: {sorted(keys)[:6]}"
    )
  raise ValueError(
    f"{source}: several ViTs in this checkpoint, under prefixes {candidates}; "
    "pass prefix= to choose one"
  )


def _block_fn(
  index: Optional[int], shape: Optional[Tuple[int, ...]]
) -> Callable[[np.ndarray], np.ndarray]:
  """Takes block `index` of a scanned (stacked) array when given, then reshapes when asked."""

  def fn(a: np.ndarray) -> np.ndarray:
    a = a if index is None else a[index]
    return a if shape is None else a.reshape(shape)

  return fn


def big_vision_plan(
  config: vit_lib.ViTConfig, found: Mapping[str, Tuple[int, ...]], source: str
) -> Tuple[Plan, Dict[str, Tuple[int, ...]]]:
  """(plan, big_vision key (prefix stripped) -> expected shape) for `config`, adapted to the
  layout variant of the checkpoint (`found`: its unprefixed keys and their shapes)."""
  c = config
  w, m, p, ch, n, h, d = (
    c.width,
    c.mlp_dim,
    c.patch_size,
    c.num_channels,
    c.num_patches,
    c.num_heads,
    c.head_dim,
  )
  plan: Plan = {}
  wanted: Dict[str, Tuple[int, ...]] = {"embedding/kernel": (p, p, ch, w), "embedding/bias": (w,)}
  plan["embedding/kernel"] = (("embedding/kernel",), lambda a: a.reshape(p * p * ch, w))
  plan["embedding/bias"] = (("embedding/bias",), _ident)

  pos_keys = [k for k in _NPZ_POS if k in found]
  if len(pos_keys) > 1:
    raise ValueError(f"{source}: several position-embedding tables {pos_keys}; expected one")
  pos = pos_keys[0] if pos_keys else _NPZ_POS[0]
  # Checkpoints before 2022 concatenated [cls] first and then added a table of N + 1 rows.
  combined = c.use_cls_token and tuple(found.get(pos, ())) == (1, n + 1, w)
  wanted[pos] = (1, n + 1, w) if combined else (1, n, w)
  plan["pos_embedding"] = ((pos,), (lambda a: a[0, 1:]) if combined else (lambda a: a[0]))
  if c.use_cls_token:
    wanted["cls"] = (1, 1, w)
    plan["cls"] = (
      (("cls", pos), lambda t, a: t[0, 0] + a[0, 0]) if combined else (("cls",), lambda t: t[0, 0])
    )

  scanned = any(k.startswith("Transformer/encoderblock/") for k in found)
  if scanned and any(k.startswith("Transformer/encoderblock_") for k in found):
    raise ValueError(
      f"{source}: both a scanned 'Transformer/encoderblock/' and per-block "
      "'Transformer/encoderblock_N/' parameters; expected one layout"
    )
  pre_linen = any(
    k.startswith("Transformer/encoderblock") and f"/{_PRE_LINEN[3]}/" in k for k in found
  )
  ln0, mha, ln1, mlp = _PRE_LINEN if pre_linen else _LINEN
  # big_vision block sub-path -> (its shape, our sub-path, our shape when it differs).
  block = {
    f"{ln0}/scale": ((w,), "pre_attention_layer_norm/scale", None),
    f"{ln0}/bias": ((w,), "pre_attention_layer_norm/bias", None),
    f"{ln1}/scale": ((w,), "pre_mlp_layer_norm/scale", None),
    f"{ln1}/bias": ((w,), "pre_mlp_layer_norm/bias", None),
    f"{mha}/out/kernel": ((h, d, w), "attention/out/kernel", (h * d, w)),
    f"{mha}/out/bias": ((w,), "attention/out/bias", None),
    f"{mlp}/Dense_0/kernel": ((w, m), "mlp/wi/kernel", None),
    f"{mlp}/Dense_0/bias": ((m,), "mlp/wi/bias", None),
    f"{mlp}/Dense_1/kernel": ((m, w), "mlp/wo/kernel", None),
    f"{mlp}/Dense_1/bias": ((w,), "mlp/wo/bias", None),
  }
  for name in ("query", "key", "value"):
    block[f"{mha}/{name}/kernel"] = ((w, h, d), f"attention/{name}/kernel", (w, h * d))
    block[f"{mha}/{name}/bias"] = ((h, d), f"attention/{name}/bias", (h * d,))
  for sub, (shape, path, our_shape) in block.items():
    if scanned:
      key = f"Transformer/encoderblock/{sub}"
      wanted[key] = (c.depth,) + shape
    for i in range(c.depth):
      if not scanned:
        key = f"Transformer/encoderblock_{i}/{sub}"
        wanted[key] = shape
      plan[f"encoder/layers_{i}/{path}"] = ((key,), _block_fn(i if scanned else None, our_shape))
  for leaf in ("scale", "bias"):
    key = f"Transformer/encoder_norm/{leaf}"
    wanted[key] = (w,)
    plan[f"encoder/encoder_norm/{leaf}"] = ((key,), _ident)
  return plan, wanted


def load_big_vision_npz(
  path: str, config: Union[vit_lib.ViTConfig, str], prefix: Optional[str] = None
) -> Dict[str, Any]:
  """params for `config` (a ViTConfig or size name) from a big_vision ViT `.npz` checkpoint.

  `prefix` (e.g. 'params/img/') is found automatically when one ViT is in the file.
  """
  config = resolve_config(config)
  path = os.fspath(path)
  index = npz_shapes(path)
  if prefix is None:
    prefix = _npz_prefix(list(index), path)
  elif not any(k.startswith(prefix) for k in index):
    raise ValueError(
      f"{path}: no key starts with the given prefix {prefix!r}; keys start with: "
      f"{sorted(index)[:6]}"
    )
  found = {k[len(prefix) :]: shape for k, (shape, _) in index.items() if k.startswith(prefix)}
  plan, wanted = big_vision_plan(config, found, path)
  hint = ""
  if "cls" in found and not config.use_cls_token:
    hint = " (the checkpoint has a [CLS] token 'cls': set use_cls_token=True)"
  # Report keys with the prefix, as they appear in the file.
  with np.load(path, allow_pickle=False) as data:
    params = _assemble(
      {k: (tuple(prefix + s for s in keys), fn) for k, (keys, fn) in plan.items()},
      {prefix + k: v for k, v in wanted.items()},
      {prefix + k: v for k, v in found.items()},
      lambda key: data[key],
      config,
      path,
      tuple(prefix + s for s in _NPZ_IGNORED),
      hint,
    )
  return params
