"""LoRA (`method.name = 'lora'`) on the T5 encoder's projections: its config, and merging.

The branch itself lives in `adalink.models.layers.Dense` (LoRA is the one intrusive method, so it
has to sit inside the layer): the method's only hook is the dense-layer spec `lora_spec`, which
the model wrappers hand to the base model. This module names what LoRA may attach to and folds
trained adapters back into plain kernels for serving, after which the base model runs at its own
cost.

Config fields: `rank` (1..d_model), `targets` (projection names, default all of `ALL_TARGETS`),
`alpha` (the scale numerator, default `rank`), `lora_decoder` (also adapt the decoder),
`dropout_rate` (on the LoRA input, default 0).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import jax.numpy as jnp
from flax import traverse_util

from adalink.models import layers
from adalink.peft.base import MethodSpec, dropout_field, rank_field, register_method

ATTENTION_TARGETS = ("query", "key", "value", "out")
MLP_TARGETS = ("wi", "wi_0", "wi_1", "wo")
ALL_TARGETS = ATTENTION_TARGETS + MLP_TARGETS


@register_method
@dataclasses.dataclass(frozen=True)
class LoraMethod(MethodSpec):
  name: str = "lora"
  rank: int = 0
  targets: Tuple[str, ...] = ALL_TARGETS
  alpha: Optional[float] = None  # None: alpha = rank (a scale of 1)
  lora_decoder: bool = False
  dropout_rate: float = 0.0

  config_fields = ("rank", "targets", "alpha", "lora_decoder", "dropout_rate")

  def __post_init__(self):
    super().__post_init__()
    if self.alpha is None:
      object.__setattr__(self, "alpha", float(self.rank))

  @classmethod
  def from_config(cls, fields, ctx) -> "LoraMethod":
    rank = rank_field(fields, ctx.d_model)
    targets = tuple(fields.get("targets", ALL_TARGETS))
    if not targets:
      raise ValueError("method.targets is empty: name the projections LoRA should adapt")
    for tgt in targets:
      if tgt not in ALL_TARGETS:
        raise ValueError(f"method.targets: unknown target {tgt!r}; known: {list(ALL_TARGETS)}")
    alpha = fields.get("alpha", None)
    alpha = float(rank if alpha is None else alpha)
    if alpha <= 0:
      raise ValueError(f"method.alpha must be > 0, got {alpha!r}")
    return cls(
      rank=rank,
      targets=targets,
      alpha=alpha,
      lora_decoder=bool(fields.get("lora_decoder", False)),
      dropout_rate=dropout_field(fields, 0.0),
    )

  @property
  def lora_spec(self) -> layers.LoraSpec:
    return layers.LoraSpec(self.rank, self.alpha, self.targets, self.dropout_rate)


def merge_lora(
  params: Dict[str, Any], adapters: Dict[str, Any], rank: int, alpha: float
) -> Dict[str, Any]:
  """Returns `params` with every LoRA pair folded in: kernel + (alpha / rank) * A @ B.

  Adapters are matched to kernels by path, so a pair whose layer is missing from `params` is an
  error naming the path (it would otherwise be dropped silently).
  """
  flat = traverse_util.flatten_dict(params)
  flat_ad = traverse_util.flatten_dict(adapters)
  pairs = {}
  for path, value in flat_ad.items():
    if path[-1] in ("lora_a", "lora_b"):
      pairs.setdefault(path[:-1], {})[path[-1]] = value
  scale = alpha / rank
  for layer, ab in pairs.items():
    kernel_path = layer + ("kernel",)
    if kernel_path not in flat:
      raise KeyError(f"LoRA adapter at {'/'.join(layer)} has no kernel in the base params")
    if set(ab) != {"lora_a", "lora_b"}:
      raise KeyError(
        f"LoRA adapter at {'/'.join(layer)} is missing { ({'lora_a', 'lora_b'} - set(ab)) }"
      )
    kernel = flat[kernel_path]
    flat[kernel_path] = (kernel.astype(jnp.float32) + scale * (ab["lora_a"] @ ab["lora_b"])).astype(
      kernel.dtype
    )
  return traverse_util.unflatten_dict(flat)


def lora_layers(adapters: Dict[str, Any]) -> Tuple[str, ...]:
  """Paths of the layers carrying LoRA weights, for reports and tests."""
  flat = traverse_util.flatten_dict(adapters)
  return tuple(sorted({"/".join(p[:-1]) for p in flat if p[-1] in ("lora_a", "lora_b")}))
