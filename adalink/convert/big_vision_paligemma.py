"""big_vision PaliGemma `.npz` checkpoints -> the project's PaliGemma.

Layout facts (big_vision `models/proj/paligemma`, keys joined by '/', usually under 'params/'):
  * `img/...`: the SigLIP tower, read by `adalink.convert.big_vision_vit.load_big_vision_npz` (scanned
    `Transformer/encoderblock/` or per-block); `img/head/{kernel, bias}` is the projection to
    the decoder's width (kernel (vision width, d)).
  * `llm/embedder/input_embedding` (vocab, d): the token table, tied to the output.
  * `llm/layers/...` scanned over the layers (leading axis L), or `llm/layers_N/...` per layer:
      attn/q_einsum/w (L, H, d, hd) and attn/kv_einsum/w (L, 2, KVH, d, hd), or, when every
      head has its own keys, attn/qkv_einsum/w (L, 3, H, d, hd);
      attn/attn_vec_einsum/w (L, H, hd, d);
      mlp/gating_einsum (L, 2, d, F) (gate, then up) and mlp/linear (L, F, d);
      pre_attention_norm/scale and pre_ffw_norm/scale (L, d), plus post_attention_norm and
      post_ffw_norm in Gemma 2.
  * `llm/final_norm/scale` (d,).
The architecture comes from the caller's PaliGemmaConfig (the file records none); every missing,
mis-shaped or unexpected key is refused by name.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Tuple

import numpy as np

from adalink.convert import big_vision_vit, tree
from adalink.models import paligemma

_NORMS_V1 = ("pre_attention_norm", "pre_ffw_norm")
_NORMS_V2 = _NORMS_V1 + ("post_attention_norm", "post_ffw_norm")


def _llm_plan(config, found, llm: str, source: str):
  """(plan: our path -> (key, fn of the array), wanted: key -> shape) for the decoder."""
  c = config.text
  d, h, kvh, hd, f, n = c.d_model, c.num_heads, c.num_kv_heads, c.head_dim, c.d_ff, c.num_layers
  scanned = any(k.startswith(f"{llm}layers/") for k in found)
  plan: Dict[str, Tuple[str, Callable[[np.ndarray], np.ndarray]]] = {}
  wanted: Dict[str, Tuple[int, ...]] = {
    f"{llm}embedder/input_embedding": (c.vocab_size, d),
    f"{llm}final_norm/scale": (d,),
  }
  plan["token_embedder/embedding"] = (f"{llm}embedder/input_embedding", lambda a: a)
  plan["final_norm/scale"] = (f"{llm}final_norm/scale", lambda a: a)
  fused = h == kvh and any(k.endswith("attn/qkv_einsum/w") for k in found)
  parts: Dict[str, Tuple[Tuple[int, ...], Dict[str, Callable]]] = {
    "attn/attn_vec_einsum/w": (
      (h, hd, d),
      {"attention/out/kernel": lambda a: a.reshape(h * hd, d)},
    ),
    "mlp/gating_einsum": (
      (2, d, f),
      {"mlp/wi_0/kernel": lambda a: a[0], "mlp/wi_1/kernel": lambda a: a[1]},
    ),
    "mlp/linear": ((f, d), {"mlp/wo/kernel": lambda a: a}),
  }
  heads = lambda a, k: a.transpose(1, 0, 2).reshape(d, k * hd)  # (k, d, hd) -> (d, k * hd)
  if fused:
    parts["attn/qkv_einsum/w"] = (
      (3, h, d, hd),
      {
        f"attention/{p}/kernel": (lambda a, i=i: heads(a[i], h))
        for i, p in enumerate(("query", "key", "value"))
      },
    )
  else:
    parts["attn/q_einsum/w"] = ((h, d, hd), {"attention/query/kernel": lambda a: heads(a, h)})
    parts["attn/kv_einsum/w"] = (
      (2, kvh, d, hd),
      {
        "attention/key/kernel": lambda a: heads(a[0], kvh),
        "attention/value/kernel": lambda a: heads(a[1], kvh),
      },
    )
  for norm in _NORMS_V2 if c.version == 2 else _NORMS_V1:
    parts[f"{norm}/scale"] = ((d,), {f"{norm}/scale": lambda a: a})
  for sub, (shape, outputs) in parts.items():
    if scanned:
      wanted[f"{llm}layers/{sub}"] = (n,) + shape
    for i in range(n):
      key = f"{llm}layers/{sub}" if scanned else f"{llm}layers_{i}/{sub}"
      if not scanned:
        wanted[key] = shape
      for ours, fn in outputs.items():
        plan[f"layers_{i}/{ours}"] = (key, (lambda a, fn=fn, i=i: fn(a[i])) if scanned else fn)
  return plan, wanted


def load_big_vision_paligemma(path: str, config: paligemma.PaliGemmaConfig) -> Dict[str, Any]:
  """PaliGemma params for `config` from a big_vision `.npz` (prefix 'params/' or none)."""
  path = os.fspath(path)
  index = big_vision_vit.npz_shapes(path)
  prefixes = [p for p in ("params/", "") if f"{p}llm/embedder/input_embedding" in index]
  if not prefixes:
    raise ValueError(
      f"{path}: no 'llm/embedder/input_embedding' (with or without 'params/'): not a big_vision "
      f"PaliGemma checkpoint? Keys start with: {sorted(index)[:6]}"
    )
  p = prefixes[0]
  found = {k: shape for k, (shape, _) in index.items()}
  plan, wanted = _llm_plan(config, found, f"{p}llm/", path)
  proj = f"{p}img/head/"
  wanted[f"{proj}kernel"] = (config.vision.width, config.text.d_model)
  wanted[f"{proj}bias"] = (config.text.d_model,)
  llm_keys = {k: v for k, v in found.items() if k.startswith(f"{p}llm/")}
  tree.check_shapes({k: found[k] for k in wanted if k in found}, wanted, path, allow_extra=True)
  extra = sorted(k for k in llm_keys if k not in wanted)
  if extra:
    raise ValueError(f"{path}: unexpected decoder key(s) for this config: {extra[:12]}")
  vit_params = big_vision_vit.load_big_vision_npz(path, config.vision, prefix=f"{p}img/")
  flat: Dict[str, np.ndarray] = {}
  with np.load(path, allow_pickle=False) as data:
    cache: Dict[str, np.ndarray] = {}

    def get(key):
      if key not in cache:
        cache[key] = tree.to_float32(data[key], key, path)
      return cache[key]

    for ours, (key, fn) in plan.items():
      flat[ours] = np.ascontiguousarray(fn(get(key)), dtype=np.float32)
    projection = {"kernel": get(f"{proj}kernel"), "bias": get(f"{proj}bias")}
  return {**tree.unflatten(flat), "vit": vit_params, "image_projection": projection}
