"""Gemma's architecture as data: `GemmaConfig` (every field checked on construction) and the
named sizes (`SIZES`, `get_config`): the published Gemma 2B and Gemma 2 2B shapes and tiny ones for
tests. The network is `gemma.py`."""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

from adalink.models import config_base

GLOBAL, LOCAL = "global", "local"


@dataclasses.dataclass(frozen=True)
class GemmaConfig(config_base.ConfigBase):
  """Architecture of one Gemma decoder.

  `version` 2 adds the norms after attention and after the MLP; `layer_types` (empty: every layer
  global) marks layers that attend within `sliding_window` positions as 'local'. `query_scale` is
  `query_pre_attn_scalar ** -0.5` (None: head_dim). Soft caps of None are off.
  """

  vocab_size: int
  d_model: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  d_ff: int
  version: int = 1
  rms_norm_eps: float = 1e-6
  rope_theta: float = 10000.0
  query_pre_attn_scalar: Optional[float] = None
  attn_logit_softcap: Optional[float] = None
  final_logit_softcap: Optional[float] = None
  sliding_window: Optional[int] = None
  layer_types: Tuple[str, ...] = ()
  prefix_attention: str = "causal"  # or "full": the prefix-LM of PaliGemma
  dtype: str = "float32"
  # Serving folded AdaLink: inputs are read from a table of their own (`input_embedder`) while
  # the tied output layer keeps the original one.
  separate_input_embedding: bool = False
  pad_token_id: int = 0
  eos_token_id: int = 1
  bos_token_id: int = 2
  # What a batch puts in the continuation's slot 0; never read (see `adalink.models.gemma`).
  decoder_start_token_id: int = 0

  def __post_init__(self):
    for f in ("vocab_size", "d_model", "num_layers", "num_heads", "num_kv_heads", "head_dim"):
      v = getattr(self, f)
      if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"GemmaConfig.{f} must be a positive integer, got {v!r}")
    if not isinstance(self.d_ff, int) or self.d_ff <= 0:
      raise ValueError(f"GemmaConfig.d_ff must be a positive integer, got {self.d_ff!r}")
    if self.num_heads % self.num_kv_heads:
      raise ValueError(
        f"GemmaConfig.num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
        f"({self.num_kv_heads})"
      )
    if self.head_dim % 2:
      raise ValueError(
        f"GemmaConfig.head_dim must be even for rotary positions, got {self.head_dim}"
      )
    if self.version not in (1, 2):
      raise ValueError(f"GemmaConfig.version must be 1 or 2, got {self.version!r}")
    self.check_dtype()
    if self.prefix_attention not in ("causal", "full"):
      raise ValueError(
        f"GemmaConfig.prefix_attention must be 'causal' or 'full', got {self.prefix_attention!r}"
      )
    if self.layer_types:
      if len(self.layer_types) != self.num_layers:
        raise ValueError(
          f"GemmaConfig.layer_types has {len(self.layer_types)} entries for "
          f"num_layers={self.num_layers}"
        )
      bad = sorted(set(self.layer_types) - {GLOBAL, LOCAL})
      if bad:
        raise ValueError(f"GemmaConfig.layer_types: unknown type(s) {bad}; use 'global'/'local'")
      if LOCAL in self.layer_types and not self.sliding_window:
        raise ValueError("GemmaConfig.layer_types has 'local' layers but no sliding_window")

  @property
  def query_scale(self) -> float:
    scalar = self.query_pre_attn_scalar or self.head_dim
    return float(scalar) ** -0.5

  def is_local(self, layer: int) -> bool:
    return bool(self.layer_types) and self.layer_types[layer] == LOCAL


# Named sizes: the published Gemma 2B / Gemma 2 2B shapes (for planning and parameter tables) and
# download-free tiny ones for tests and smoke runs.
SIZES: Dict[str, GemmaConfig] = {
  "tiny": GemmaConfig(
    vocab_size=512, d_model=64, num_layers=2, num_heads=4, num_kv_heads=1, head_dim=16, d_ff=128
  ),
  "tiny2": GemmaConfig(
    vocab_size=512,
    d_model=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=16,
    d_ff=128,
    version=2,
    query_pre_attn_scalar=16,
    attn_logit_softcap=50.0,
    final_logit_softcap=30.0,
    sliding_window=8,
    layer_types=(LOCAL, GLOBAL),
  ),
  # Small enough to train on a CPU in minutes, wide enough for the paper's ranks (up to 256).
  "mini": GemmaConfig(
    vocab_size=512, d_model=256, num_layers=4, num_heads=4, num_kv_heads=1, head_dim=64, d_ff=1024
  ),
  "gemma_2b": GemmaConfig(
    vocab_size=256000,
    d_model=2048,
    num_layers=18,
    num_heads=8,
    num_kv_heads=1,
    head_dim=256,
    d_ff=16384,
  ),
  "gemma2_2b": GemmaConfig(
    vocab_size=256000,
    d_model=2304,
    num_layers=26,
    num_heads=8,
    num_kv_heads=4,
    head_dim=256,
    d_ff=9216,
    version=2,
    query_pre_attn_scalar=256,
    attn_logit_softcap=50.0,
    final_logit_softcap=30.0,
    sliding_window=4096,
    layer_types=tuple(LOCAL if i % 2 == 0 else GLOBAL for i in range(26)),
  ),
}


def get_config(size: str, **overrides) -> GemmaConfig:
  """A named size, optionally with fields replaced (e.g. `prefix_attention="full"`)."""
  if size not in SIZES:
    raise ValueError(f"unknown Gemma size {size!r}; known: {sorted(SIZES)}")
  return SIZES[size].replace(**overrides)
