"""big_vision ViT `.npz` checkpoints -> the tree `adalink.models.vit.ViT` builds.

Read with `load_big_vision_npz`; the checks and the conversion itself are `vit_plan`'s. Array
shapes come from the .npy headers (`npz_shapes`), so every key is checked before any data is read.

The layout is that of big_vision `models/vit.py` (a Flax `nn.Conv` stem and
`nn.MultiHeadDotProductAttention`), '/'-joined flat keys:
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

import numpy as np
from numpy.lib import format as npy_format

from adalink.convert import vit_plan
from adalink.models import vit as vit_lib

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
) -> Tuple[vit_plan.Plan, Dict[str, Tuple[int, ...]]]:
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
  plan: vit_plan.Plan = {}
  wanted: Dict[str, Tuple[int, ...]] = {"embedding/kernel": (p, p, ch, w), "embedding/bias": (w,)}
  plan["embedding/kernel"] = (("embedding/kernel",), lambda a: a.reshape(p * p * ch, w))
  plan["embedding/bias"] = (("embedding/bias",), vit_plan.identity)

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
    plan[f"encoder/encoder_norm/{leaf}"] = ((key,), vit_plan.identity)
  return plan, wanted


def load_big_vision_npz(
  path: str, config: Union[vit_lib.ViTConfig, str], prefix: Optional[str] = None
) -> Dict[str, Any]:
  """params for `config` (a ViTConfig or size name) from a big_vision ViT `.npz` checkpoint.

  `prefix` (e.g. 'params/img/') is found automatically when one ViT is in the file.
  """
  config = vit_plan.resolve_config(config)
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
    params = vit_plan.assemble(
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
