"""Hugging Face Gemma and Gemma 2 checkpoints (`config.json` + safetensors) -> the project's Gemma.

Reads a `GemmaForCausalLM` / `Gemma2ForCausalLM` directory without torch (one file or shards, in
float32, float16 or bfloat16) into float32 numpy arrays in the tree `adalink.models.gemma.Gemma`
builds. The same reader serves the language model inside a PaliGemma directory through `prefix`.

Layout facts (Hugging Face side):
  * `model.embed_tokens.weight` (vocab, d) is the token table and, tied, the output layer
    (`lm_head.weight` is absent or a copy).
  * Linear weights are stored (out, in): `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight` and
    `model.layers.{i}.mlp.{gate,up,down}_proj.weight`, transposed into (in, out) kernels.
  * Norms store the `scale` of `x / rms(x) * (1 + scale)`. Gemma 1 has `input_layernorm` (before
    attention) and `post_attention_layernorm` (before the MLP, despite its name); Gemma 2 has
    `input_layernorm`, `post_attention_layernorm` (after attention), `pre_feedforward_layernorm`
    and `post_feedforward_layernorm`. `model.norm.weight` closes the stack.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import flax.linen as nn
from flax import traverse_util

from adalink.convert import hf_dir, tree
from adalink.models import gemma, gemma_config

MODEL_TYPES = {"gemma": 1, "gemma2": 2}

_NORMS = {
  1: {"pre_attention_norm": "input_layernorm", "pre_ffw_norm": "post_attention_layernorm"},
  2: {
    "pre_attention_norm": "input_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "pre_ffw_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
  },
}
_PROJ = {
  "attention/query": "self_attn.q_proj",
  "attention/key": "self_attn.k_proj",
  "attention/value": "self_attn.v_proj",
  "attention/out": "self_attn.o_proj",
  "mlp/wi_0": "mlp.gate_proj",
  "mlp/wi_1": "mlp.up_proj",
  "mlp/wo": "mlp.down_proj",
}
# Fields that describe the network; a caller's config must agree with the file on each.
ARCHITECTURE_FIELDS = (
  "vocab_size",
  "d_model",
  "num_layers",
  "num_heads",
  "num_kv_heads",
  "head_dim",
  "d_ff",
  "version",
  "rms_norm_eps",
  "rope_theta",
  "query_pre_attn_scalar",
  "attn_logit_softcap",
  "final_logit_softcap",
  "sliding_window",
  "layer_types",
)


def _field(cfg: Mapping[str, Any], key: str, source: str, default: Any = None, kind=int):
  value = cfg.get(key, default)
  if value is None and default is None:
    raise ValueError(f"{source}: missing field {key!r}")
  if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
    raise ValueError(f"{source}: field {key!r} must be a positive integer, got {value!r}")
  return value


def _rope_theta(cfg: Mapping[str, Any], source: str) -> float:
  params = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
  if isinstance(params, dict) and params.get("rope_type", "default") not in ("default", None):
    raise ValueError(
      f"{source}: rope_type {params['rope_type']!r} is not supported (only the default rotary)"
    )
  theta = params.get("rope_theta") if isinstance(params, dict) else None
  return float(theta if theta is not None else cfg.get("rope_theta", 10000.0))


def config_from_hf(
  cfg: Mapping[str, Any], source: str = hf_dir.CONFIG_FILE
) -> gemma_config.GemmaConfig:
  """The GemmaConfig a Hugging Face `config.json` (a dict) describes; refuses other models."""
  model_type = cfg.get("model_type")
  if model_type not in MODEL_TYPES:
    raise ValueError(
      f"{source}: model_type {model_type!r} is not a Gemma decoder (expected one of "
      f"{sorted(MODEL_TYPES)})"
    )
  version = MODEL_TYPES[model_type]
  act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "gelu_pytorch_tanh"
  if act not in ("gelu_pytorch_tanh", "gelu_new"):
    raise ValueError(
      f"{source}: hidden_activation {act!r} is not supported (Gemma uses 'gelu_pytorch_tanh')"
    )
  d_model = _field(cfg, "hidden_size", source)
  heads = _field(cfg, "num_attention_heads", source)
  layers_n = _field(cfg, "num_hidden_layers", source)
  layer_types: Tuple[str, ...] = ()
  window = cfg.get("sliding_window") if version == 2 else None
  if version == 2:
    hf_types = cfg.get("layer_types")
    if hf_types is None:  # older Gemma 2 configs: even layers local, odd layers global
      hf_types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers_n)]
    names = {"sliding_attention": gemma_config.LOCAL, "full_attention": gemma_config.GLOBAL}
    bad = sorted({t for t in hf_types if t not in names})
    if bad:
      raise ValueError(f"{source}: layer_types holds unknown type(s) {bad}")
    layer_types = tuple(names[t] for t in hf_types)
    if gemma_config.LOCAL not in layer_types:
      window = None
  caps = lambda key: (cfg.get(key) or None) if version == 2 else None
  return gemma_config.GemmaConfig(
    vocab_size=_field(cfg, "vocab_size", source),
    d_model=d_model,
    num_layers=layers_n,
    num_heads=heads,
    num_kv_heads=_field(cfg, "num_key_value_heads", source, heads),
    head_dim=_field(cfg, "head_dim", source, d_model // heads),
    d_ff=_field(cfg, "intermediate_size", source),
    version=version,
    rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
    rope_theta=_rope_theta(cfg, source),
    query_pre_attn_scalar=cfg.get("query_pre_attn_scalar") if version == 2 else None,
    attn_logit_softcap=caps("attn_logit_softcapping"),
    final_logit_softcap=caps("final_logit_softcapping"),
    sliding_window=window,
    layer_types=layer_types,
    pad_token_id=int(cfg.get("pad_token_id") if cfg.get("pad_token_id") is not None else 0),
    eos_token_id=_first(cfg.get("eos_token_id"), 1),
    bos_token_id=_first(cfg.get("bos_token_id"), 2),
  )


def _first(value, default: int) -> int:
  if isinstance(value, (list, tuple)):
    value = value[0] if value else None
  return int(value) if value is not None else default


def expected_shapes(config: gemma_config.GemmaConfig) -> Dict[str, Tuple[int, ...]]:
  """'layers_0/attention/query/kernel' -> shape, for every parameter `config` builds."""
  abstract = nn.unbox(gemma.abstract_params(config.replace(dtype="float32")))["params"]
  flat = traverse_util.flatten_dict(abstract, sep="/")
  return {k: tuple(v.shape) for k, v in flat.items()}


def hf_names(
  config: gemma_config.GemmaConfig, prefix: str = "model."
) -> Dict[str, Tuple[str, bool]]:
  """Project path -> (Hugging Face tensor name, stored transposed) for every parameter."""
  out = {
    "token_embedder/embedding": (f"{prefix}embed_tokens.weight", False),
    "final_norm/scale": (f"{prefix}norm.weight", False),
  }
  for i in range(config.num_layers):
    layer = f"{prefix}layers.{i}."
    for ours, theirs in _NORMS[config.version].items():
      out[f"layers_{i}/{ours}/scale"] = (f"{layer}{theirs}.weight", False)
    for ours, theirs in _PROJ.items():
      out[f"layers_{i}/{ours}/kernel"] = (f"{layer}{theirs}.weight", True)
  return out


def check_same_architecture(
  from_file: gemma_config.GemmaConfig, given: gemma_config.GemmaConfig, source: str
) -> None:
  diff = [
    f"{f}: file {getattr(from_file, f)!r}, config {getattr(given, f)!r}"
    for f in ARCHITECTURE_FIELDS
    if getattr(from_file, f) != getattr(given, f)
  ]
  if diff:
    raise ValueError(f"{source}: the checkpoint's architecture differs: {'; '.join(diff)}")


def read_params(
  tensors: hf_dir.HfTensors,
  config: gemma_config.GemmaConfig,
  source: str,
  prefix: str = "model.",
  allow_extra: Tuple[str, ...] = (),
) -> Dict[str, Any]:
  """The Gemma tree from `tensors` (names under `prefix`); every missing, mis-shaped or
  unexpected tensor is refused by name. Names starting with one of `allow_extra` (another tower
  of the same file) are left for their own reader."""
  expected = expected_shapes(config)
  names_for = hf_names(config, prefix)
  wanted = {
    hf: tuple(reversed(expected[path])) if transposed else expected[path]
    for path, (hf, transposed) in names_for.items()
  }
  present = set(tensors.names())
  tree.check_shapes(
    {n: tensors.shape(n) for n in present if n in wanted}, wanted, source, allow_extra=True
  )
  head = {"lm_head.weight", f"{prefix.rsplit('model.', 1)[0]}lm_head.weight"}
  extra = sorted(n for n in present - set(wanted) - head if not n.startswith(allow_extra))
  if extra:
    raise ValueError(
      f"{source}: unexpected tensor(s) for a Gemma decoder with this config: "
      f"{extra[:12]}{' ...' if len(extra) > 12 else ''}"
    )
  flat = {}
  for path, (hf, transposed) in names_for.items():
    arr = tree.to_float32(tensors.get(hf), hf, source)
    flat[path] = np.ascontiguousarray(arr.T) if transposed else arr
  for name in sorted(head & present):
    if not np.array_equal(
      tree.to_float32(tensors.get(name), name, source), flat["token_embedder/embedding"]
    ):
      raise ValueError(
        f"{source}: {name!r} differs from the token table; Gemma ties its output layer to it"
      )
  return tree.unflatten(flat)


def load_hf_gemma(
  directory: str, config: Optional[gemma_config.GemmaConfig] = None
) -> Tuple[gemma_config.GemmaConfig, Dict[str, Any]]:
  """(GemmaConfig, params) from a Hugging Face Gemma / Gemma 2 causal-LM directory.

  `config`, when given, must agree with `config.json` on every architecture field and is
  returned as given (so `dtype` and `prefix_attention` stay the caller's choice).
  """
  directory = os.fspath(directory)
  source = os.path.join(directory, hf_dir.CONFIG_FILE)
  file_config = config_from_hf(hf_dir.read_config_json(directory), source)
  if config is not None:
    check_same_architecture(file_config, config, directory)
  params = read_params(hf_dir.HfTensors(directory), file_config, directory)
  return (config if config is not None else file_config), params
