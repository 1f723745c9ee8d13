"""Hugging Face T5 / FLAN-T5 checkpoints (`config.json` + safetensors) <-> the project's T5.

Reads a `T5ForConditionalGeneration` directory without torch: `model.safetensors`, or shards
listed in `model.safetensors.index.json`, in float32, float16 or bfloat16. Parameters come back as
float32 numpy arrays in the T5X tree `adalink.models.t5.T5` uses.

Layout facts (Hugging Face side):
  * `shared.weight` (vocab, d) is the token table; `lm_head.weight` (vocab, d) the output layer.
  * Linear weights are stored (out, in), so every kernel is transposed into the (in, out) layout.
  * Stack i of the encoder is `encoder.block.{i}`: `layer.0` self-attention (`SelfAttention.{q,k,v,o}`
    and `layer_norm`), `layer.1` MLP (`DenseReluDense.{wi | wi_0, wi_1, wo}` and `layer_norm`).
    The decoder has `layer.0` self-attention, `layer.1` cross-attention (`EncDecAttention`),
    `layer.2` MLP. `{encoder,decoder}.final_layer_norm.weight` close each stack.
  * Relative position biases live in block 0 only:
    `{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`, (buckets, heads).
Output-layer conventions: original T5 ties `lm_head` to `shared` and scales the decoder output by
d_model**-0.5 (the project's `tie_word_embeddings=True`); v1.1 / FLAN-T5 have a separate head and no
scaling (`tie_word_embeddings=False`). Older configs say which with `tie_word_embeddings`;
transformers 5 always writes `tie_word_embeddings: true` and records the scaling as
`scale_decoder_outputs`, which wins when present.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Mapping, Optional, Tuple

import ml_dtypes
import numpy as np

from adalink.convert import hf_dir, safetensors_io, tree
from adalink.models import t5

CONFIG_FILE, WEIGHTS_FILE, INDEX_FILE = hf_dir.CONFIG_FILE, hf_dir.WEIGHTS_FILE, hf_dir.INDEX_FILE
MODEL_TYPES = ("t5", "mt5")

# Hugging Face activation names -> the project's (`adalink.models.layers._ACTIVATIONS`).
# "gelu_new" is the tanh approximation; plain "gelu" in transformers is the exact erf form.
_HF_TO_ACT = {
  "relu": "relu",
  "gelu_new": "gelu",
  "gelu_pytorch_tanh": "gelu",
  "gelu": "gelu_exact",
  "silu": "silu",
  "swish": "silu",
}
_ACT_TO_HF = {"relu": "relu", "gelu": "gelu_new", "gelu_exact": "gelu", "silu": "silu"}

# Tensors a T5ForConditionalGeneration file may hold beyond the ones read: copies of `shared`
# (older exports) and a cross-attention bias table transformers itself ignores.
_REDUNDANT = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
_IGNORED = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)

# (stack, T5X sub-module) -> (Hugging Face layer index, module name inside that layer).
_BLOCK_PARTS = {
  ("encoder", "pre_attention_layer_norm"): (0, "layer_norm"),
  ("encoder", "attention"): (0, "SelfAttention"),
  ("encoder", "pre_mlp_layer_norm"): (1, "layer_norm"),
  ("encoder", "mlp"): (1, "DenseReluDense"),
  ("decoder", "pre_self_attention_layer_norm"): (0, "layer_norm"),
  ("decoder", "self_attention"): (0, "SelfAttention"),
  ("decoder", "pre_cross_attention_layer_norm"): (1, "layer_norm"),
  ("decoder", "encoder_decoder_attention"): (1, "EncDecAttention"),
  ("decoder", "pre_mlp_layer_norm"): (2, "layer_norm"),
  ("decoder", "mlp"): (2, "DenseReluDense"),
}
_ATTN = {"query": "q", "key": "k", "value": "v", "out": "o"}
_LAYER_RE = re.compile(r"^(encoder|decoder)/layers_(\d+)/([a-z_]+)/(.+)$")


def hf_name(path: str) -> Tuple[str, bool]:
  """T5X parameter path -> (Hugging Face tensor name, whether the stored tensor is transposed)."""
  fixed = {
    "token_embedder/embedding": ("shared.weight", False),
    "decoder/logits_dense/kernel": ("lm_head.weight", True),
    "encoder/encoder_norm/scale": ("encoder.final_layer_norm.weight", False),
    "decoder/decoder_norm/scale": ("decoder.final_layer_norm.weight", False),
    "encoder/relpos_bias/rel_embedding": (
      "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
      True,
    ),
    "decoder/relpos_bias/rel_embedding": (
      "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
      True,
    ),
  }
  if path in fixed:
    return fixed[path]
  m = _LAYER_RE.match(path)
  if m is None or (m.group(1), m.group(3)) not in _BLOCK_PARTS:
    raise ValueError(f"no Hugging Face name for parameter {path!r}")
  stack, index, part, rest = m.groups()
  layer, module = _BLOCK_PARTS[(stack, part)]
  prefix = f"{stack}.block.{index}.layer.{layer}.{module}"
  if module == "layer_norm":
    if rest != "scale":
      raise ValueError(f"no Hugging Face name for parameter {path!r}")
    return f"{prefix}.weight", False
  sub, _, leaf = rest.partition("/")
  if leaf != "kernel":
    raise ValueError(f"no Hugging Face name for parameter {path!r}")
  if module == "DenseReluDense":
    return f"{prefix}.{sub}.weight", True
  if sub not in _ATTN:
    raise ValueError(f"no Hugging Face name for parameter {path!r}")
  return f"{prefix}.{_ATTN[sub]}.weight", True


def _activations(feed_forward_proj: Any, source: str) -> Tuple[str, ...]:
  if not isinstance(feed_forward_proj, str):
    raise ValueError(f"{source}: feed_forward_proj must be a string, got {feed_forward_proj!r}")
  parts = feed_forward_proj.split("-")
  gated = len(parts) == 2 and parts[0] == "gated"
  if len(parts) > 2 or (len(parts) == 2 and not gated):
    raise ValueError(
      f"{source}: feed_forward_proj {feed_forward_proj!r} is neither 'ACT' nor 'gated-ACT'"
    )
  act = parts[-1]
  # transformers maps "gated-gelu" to the tanh GELU for compatibility with T5 v1.1.
  if feed_forward_proj == "gated-gelu":
    act = "gelu_new"
  if act not in _HF_TO_ACT:
    raise ValueError(
      f"{source}: unsupported activation {act!r} in feed_forward_proj "
      f"{feed_forward_proj!r}; supported: {sorted(_HF_TO_ACT)}"
    )
  return (_HF_TO_ACT[act], "linear") if gated else (_HF_TO_ACT[act],)


def _feed_forward_proj(activations: Tuple[str, ...]) -> str:
  if len(activations) == 2:
    if activations[1] != "linear":
      raise ValueError(
        f"mlp_activations {activations} has no Hugging Face equivalent: the gated "
        "MLP there multiplies by a linear branch"
      )
    if activations[0] == "gelu":
      return "gated-gelu"
    if activations[0] == "silu":
      return "gated-silu"
    raise ValueError(
      f"mlp_activations {activations} has no Hugging Face feed_forward_proj "
      "(gated variants available: gelu (tanh), silu)"
    )
  if activations[0] not in _ACT_TO_HF:
    raise ValueError(
      f"mlp_activations {activations} has no Hugging Face feed_forward_proj; "
      f"supported: {sorted(_ACT_TO_HF)}"
    )
  return _ACT_TO_HF[activations[0]]


def _int_field(cfg: Mapping[str, Any], key: str, default: Any, source: str) -> Any:
  value = cfg.get(key, default)
  if isinstance(value, list) and len(value) == 1:
    value = value[0]
  if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
    raise ValueError(f"{source}: {key} must be an integer, got {value!r}")
  return value


def config_from_hf(cfg: Mapping[str, Any], source: str = CONFIG_FILE) -> Tuple[t5.T5Config, bool]:
  """(T5Config, scale_decoder_outputs) from a parsed Hugging Face T5 `config.json`.

  The returned config's `tie_word_embeddings` is the output-scaling flag; whether the head's
  weights are really `shared` is decided by the weights file (see `load_hf_t5`).
  """
  model_type = cfg.get("model_type", "t5")
  if model_type not in MODEL_TYPES:
    raise ValueError(
      f"{source}: model_type {model_type!r} is not a T5 model (supported: {MODEL_TYPES})"
    )
  required = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads")
  missing = [k for k in required if k not in cfg]
  if missing:
    raise ValueError(f"{source}: missing T5 config field(s) {missing}")
  num_layers = _int_field(cfg, "num_layers", None, source)
  num_decoder_layers = _int_field(cfg, "num_decoder_layers", None, source)
  scale = cfg.get("scale_decoder_outputs", cfg.get("tie_word_embeddings", True))
  if not isinstance(scale, bool):
    raise ValueError(
      f"{source}: scale_decoder_outputs / tie_word_embeddings must be true or false, got {scale!r}"
    )
  fields = dict(
    vocab_size=_int_field(cfg, "vocab_size", None, source),
    d_model=_int_field(cfg, "d_model", None, source),
    num_heads=_int_field(cfg, "num_heads", None, source),
    d_kv=_int_field(cfg, "d_kv", None, source),
    d_ff=_int_field(cfg, "d_ff", None, source),
    num_encoder_layers=num_layers,
    num_decoder_layers=num_decoder_layers if num_decoder_layers is not None else num_layers,
    mlp_activations=_activations(cfg.get("feed_forward_proj", "relu"), source),
    tie_word_embeddings=scale,
    relative_attention_num_buckets=_int_field(cfg, "relative_attention_num_buckets", 32, source),
    relative_attention_max_distance=_int_field(cfg, "relative_attention_max_distance", 128, source),
    dropout_rate=float(cfg.get("dropout_rate", 0.1)),
    layer_norm_epsilon=float(cfg.get("layer_norm_epsilon", 1e-6)),
  )
  for key, field in (
    ("pad_token_id", "pad_token_id"),
    ("eos_token_id", "eos_token_id"),
    ("decoder_start_token_id", "decoder_start_token_id"),
  ):
    value = _int_field(cfg, key, None, source)
    if value is not None:
      fields[field] = value
  try:
    return t5.T5Config(**fields), scale
  except ValueError as e:
    raise ValueError(f"{source}: {e}") from None


def config_to_hf(config: t5.T5Config) -> Dict[str, Any]:
  """A Hugging Face `config.json` dict for `config` (read back by `config_from_hf`)."""
  return {
    "architectures": ["T5ForConditionalGeneration"],
    "model_type": "t5",
    "vocab_size": config.vocab_size,
    "d_model": config.d_model,
    "d_kv": config.d_kv,
    "d_ff": config.d_ff,
    "num_layers": config.num_encoder_layers,
    "num_decoder_layers": config.num_decoder_layers,
    "num_heads": config.num_heads,
    "relative_attention_num_buckets": config.relative_attention_num_buckets,
    "relative_attention_max_distance": config.relative_attention_max_distance,
    "dropout_rate": config.dropout_rate,
    "layer_norm_epsilon": config.layer_norm_epsilon,
    "initializer_factor": 1.0,
    "feed_forward_proj": _feed_forward_proj(config.mlp_activations),
    "is_encoder_decoder": True,
    "tie_word_embeddings": config.tie_word_embeddings,
    "use_cache": True,
    "pad_token_id": config.pad_token_id,
    "eos_token_id": config.eos_token_id,
    "decoder_start_token_id": config.decoder_start_token_id,
  }


def load_hf_t5(
  directory: str, config: Optional[t5.T5Config] = None
) -> Tuple[t5.T5Config, Dict[str, Any]]:
  """(T5Config, params) from a Hugging Face T5ForConditionalGeneration directory.

  `config`, when given, must agree with `config.json` on every architecture field (see
  `adalink.models.t5_config.ARCHITECTURE_FIELDS`); it is returned as given, so run-time fields
  such as `dtype` and `dropout_rate` can be chosen by the caller. Every tensor's shape is checked;
  a missing, mis-shaped or unexpected tensor raises ValueError naming it.
  """
  directory = os.fspath(directory)
  source = os.path.join(directory, CONFIG_FILE)
  file_config, scale = config_from_hf(hf_dir.read_config_json(directory), source)
  tensors = hf_dir.HfTensors(directory)
  names = set(tensors.names())

  tied = scale
  fold_scale = False
  if scale and "lm_head.weight" in names:
    head, shared = tensors.get("lm_head.weight"), tensors.get("shared.weight")
    if head.shape != shared.shape or not np.array_equal(head, shared):
      # A separate head with the original-T5 output scaling: fold the scale into the kernel.
      tied, fold_scale = False, True
  file_config = file_config.replace(tie_word_embeddings=tied)
  if config is not None:
    tree.check_same_architecture(file_config, config, directory)
  out_config = config if config is not None else file_config

  expected = tree.expected_shapes(file_config)
  names_for = {path: hf_name(path) for path in expected}
  if not tied and "lm_head.weight" not in names:
    # No head stored: transformers ties it to `shared` (it drops tied tensors when saving).
    names_for["decoder/logits_dense/kernel"] = ("shared.weight", True)
  wanted = {
    hf: tuple(reversed(expected[path])) if transposed else expected[path]
    for path, (hf, transposed) in names_for.items()
  }
  tree.check_shapes(
    {n: tensors.shape(n) for n in names if n in wanted}, wanted, directory, allow_extra=True
  )
  extra = sorted(
    names - set(wanted) - set(_IGNORED) - set(_REDUNDANT) - ({"lm_head.weight"} if tied else set())
  )
  if extra:
    raise ValueError(
      f"{directory}: unexpected tensor(s) for a T5ForConditionalGeneration with "
      f"this config: {extra[:12]}{' ...' if len(extra) > 12 else ''}"
    )

  flat: Dict[str, np.ndarray] = {}
  for path, (hf, transposed) in names_for.items():
    arr = tree.to_float32(tensors.get(hf), hf, directory)
    flat[path] = np.ascontiguousarray(arr.T) if transposed else arr
  if fold_scale:
    flat["decoder/logits_dense/kernel"] *= np.float32(file_config.d_model**-0.5)
  for name in _REDUNDANT:
    if name in names and not np.array_equal(
      tree.to_float32(tensors.get(name), name, directory), flat["token_embedder/embedding"]
    ):
      raise ValueError(
        f"{directory}: {name!r} differs from 'shared.weight'; this reader supports "
        "only input embeddings shared by encoder and decoder"
      )
  return out_config, tree.unflatten(flat)


_SAVE_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def save_hf_t5(
  config: t5.T5Config,
  params: Mapping[str, Any],
  out_dir: str,
  shard_size: Optional[int] = None,
  dtype: str = "float32",
) -> None:
  """Writes `params` (the project's tree, checked against `config`) as a Hugging Face directory:
  `config.json` plus `model.safetensors`, or, with `shard_size` (bytes), shards
  `model-0000i-of-0000n.safetensors` and `model.safetensors.index.json`. `dtype` is the stored
  precision ("float32", "float16", "bfloat16").
  """
  if dtype not in _SAVE_DTYPES:
    raise ValueError(f"dtype must be one of {sorted(_SAVE_DTYPES)}, got {dtype!r}")
  hf_config = config_to_hf(config)
  flat = tree.flatten(params)
  expected = tree.expected_shapes(config)
  tree.check_shapes({k: np.shape(v) for k, v in flat.items()}, expected, "save_hf_t5 params")

  tensors: Dict[str, np.ndarray] = {}
  for path in sorted(expected):
    name, transposed = hf_name(path)
    arr = np.asarray(flat[path], dtype=np.float32)
    tensors[name] = np.ascontiguousarray((arr.T if transposed else arr).astype(_SAVE_DTYPES[dtype]))

  os.makedirs(out_dir, exist_ok=True)
  for stale in os.listdir(out_dir):
    if (
      stale == WEIGHTS_FILE
      or stale == INDEX_FILE
      or re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", stale)
    ):
      os.remove(os.path.join(out_dir, stale))
  metadata = {"format": "pt"}
  if shard_size is None:
    safetensors_io.save_file(tensors, os.path.join(out_dir, WEIGHTS_FILE), metadata)
  else:
    shards = safetensors_io.plan_shards(((k, v.nbytes) for k, v in tensors.items()), shard_size)
    weight_map = {}
    for i, names in enumerate(shards):
      filename = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
      safetensors_io.save_file(
        {n: tensors[n] for n in names}, os.path.join(out_dir, filename), metadata
      )
      weight_map.update({n: filename for n in names})
    index = {
      "metadata": {"total_size": int(sum(v.nbytes for v in tensors.values()))},
      "weight_map": weight_map,
    }
    with open(os.path.join(out_dir, INDEX_FILE), "w", encoding="utf-8") as f:
      json.dump(index, f, indent=2, sort_keys=True)
  with open(os.path.join(out_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
    json.dump(hf_config, f, indent=2, sort_keys=True)
