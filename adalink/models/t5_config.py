"""T5's architecture as data: `T5Config` (every field checked on construction) and the named
sizes of original T5, T5 v1.1 and FLAN-T5 (`SIZES`, `get_config`). The network is `t5.py`, which
re-exports these names."""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

from adalink.models import config_base, layer_stack, layers

# Fields that describe the network (what a checkpoint must agree with, see
# `adalink.convert.tree.check_same_architecture`); the others (dtype, dropout_rate, ...) are
# run-time choices a caller may set freely.
ARCHITECTURE_FIELDS = (
  "vocab_size",
  "d_model",
  "num_heads",
  "d_kv",
  "d_ff",
  "num_encoder_layers",
  "num_decoder_layers",
  "mlp_activations",
  "tie_word_embeddings",
  "relative_attention_num_buckets",
  "relative_attention_max_distance",
  "layer_norm_epsilon",
)
# The architecture fields that count something (sizes, layers, buckets): positive integers.
_COUNT_FIELDS = tuple(
  f
  for f in ARCHITECTURE_FIELDS
  if f not in ("mlp_activations", "tie_word_embeddings", "layer_norm_epsilon")
)


@dataclasses.dataclass(frozen=True)
class T5Config(config_base.ConfigBase):
  """Architecture of one T5 model. `mlp_activations` of length 2 means the gated MLP of v1.1."""

  vocab_size: int
  d_model: int
  num_heads: int
  d_kv: int
  d_ff: int
  num_encoder_layers: int
  num_decoder_layers: int
  mlp_activations: Tuple[str, ...] = ("gelu", "linear")
  tie_word_embeddings: bool = False
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  dropout_rate: float = 0.1
  layer_norm_epsilon: float = 1e-6
  dtype: str = "float32"  # activations; parameters are always stored in float32
  # Serving folded AdaLink: the encoder reads its inputs from its own table
  # (`encoder_token_embedder`), while the decoder and a tied LM head keep the shared one.
  separate_encoder_embedding: bool = False
  pad_token_id: int = 0
  eos_token_id: int = 1
  decoder_start_token_id: int = 0
  # Layer stacking (`adalink.models.layer_stack`): scanned layers compile once whatever the
  # depth and keep their variables stacked under `encoder/layers` / `decoder/layers`; `remat` is
  # the rematerialisation policy of each block (none, full, dots, dots_no_batch).
  scan_layers: bool = False
  remat: str = "none"

  def __post_init__(self):
    for field in _COUNT_FIELDS:
      value = getattr(self, field)
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f"T5Config.{field} must be a positive integer, got {value!r}")
    if self.relative_attention_max_distance <= self.relative_attention_num_buckets // 2:
      # The decoder's log-spaced buckets start at num_buckets // 2; a max distance at or below it
      # leaves log(max_distance / max_exact) <= 0 and the bucket formula divides by zero.
      raise ValueError(
        f"T5Config.relative_attention_max_distance ({self.relative_attention_max_distance}) must "
        f"exceed relative_attention_num_buckets // 2 ({self.relative_attention_num_buckets // 2})"
      )
    self.check_dtype()
    layer_stack.check_remat(self.remat, "T5Config.remat")
    if not isinstance(self.scan_layers, bool):
      raise ValueError(f"T5Config.scan_layers must be True or False, got {self.scan_layers!r}")
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f"T5Config.dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
    for act in self.mlp_activations:
      layers.activation_fn(act)
    if len(self.mlp_activations) not in (1, 2):
      raise ValueError(
        f"T5Config.mlp_activations must have 1 or 2 entries, got {self.mlp_activations}"
      )
    # Tuples survive a round trip through JSON as lists; normalise so configs compare equal.
    object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))


_V11 = dict(vocab_size=32128, mlp_activations=("gelu", "linear"), tie_word_embeddings=False)
_ORIG = dict(vocab_size=32128, mlp_activations=("relu",), tie_word_embeddings=True)

# Real dimensions of the published checkpoints. v1.1 sizes are shared by FLAN-T5.
SIZES: Dict[str, T5Config] = {
  # Test size: tiny enough that a train step compiles in seconds on a CPU.
  "tiny": T5Config(
    vocab_size=384,
    d_model=32,
    num_heads=4,
    d_kv=8,
    d_ff=64,
    num_encoder_layers=2,
    num_decoder_layers=2,
    mlp_activations=("gelu", "linear"),
  ),
  # The project's own pretrained base (`adalink/zoo/t5_nano_en`): small enough to pretrain on 2
  # CPU cores, with an 8k SentencePiece vocabulary (8,000 pieces + 100 sentinels, padded).
  "nano": T5Config(
    vocab_size=8192,
    d_model=128,
    num_heads=4,
    d_kv=32,
    d_ff=512,
    num_encoder_layers=4,
    num_decoder_layers=4,
    mlp_activations=("gelu", "linear"),
    tie_word_embeddings=False,
  ),
  # T5 1.1 "efficient mini" dimensions: small enough for CPU runs, wide enough for rank 64+.
  "mini": T5Config(
    d_model=384, num_heads=8, d_kv=32, d_ff=1536, num_encoder_layers=4, num_decoder_layers=4, **_V11
  ),
  "small": T5Config(
    d_model=512, num_heads=6, d_kv=64, d_ff=1024, num_encoder_layers=8, num_decoder_layers=8, **_V11
  ),
  "base": T5Config(
    d_model=768,
    num_heads=12,
    d_kv=64,
    d_ff=2048,
    num_encoder_layers=12,
    num_decoder_layers=12,
    **_V11,
  ),
  "large": T5Config(
    d_model=1024,
    num_heads=16,
    d_kv=64,
    d_ff=2816,
    num_encoder_layers=24,
    num_decoder_layers=24,
    **_V11,
  ),
  "xl": T5Config(
    d_model=2048,
    num_heads=32,
    d_kv=64,
    d_ff=5120,
    num_encoder_layers=24,
    num_decoder_layers=24,
    **_V11,
  ),
  "xxl": T5Config(
    d_model=4096,
    num_heads=64,
    d_kv=64,
    d_ff=10240,
    num_encoder_layers=24,
    num_decoder_layers=24,
    **_V11,
  ),
  "t5_small": T5Config(
    d_model=512,
    num_heads=8,
    d_kv=64,
    d_ff=2048,
    num_encoder_layers=6,
    num_decoder_layers=6,
    **_ORIG,
  ),
  "t5_base": T5Config(
    d_model=768,
    num_heads=12,
    d_kv=64,
    d_ff=3072,
    num_encoder_layers=12,
    num_decoder_layers=12,
    **_ORIG,
  ),
  "t5_large": T5Config(
    d_model=1024,
    num_heads=16,
    d_kv=64,
    d_ff=4096,
    num_encoder_layers=24,
    num_decoder_layers=24,
    **_ORIG,
  ),
  "t5_3b": T5Config(
    d_model=1024,
    num_heads=32,
    d_kv=128,
    d_ff=16384,
    num_encoder_layers=24,
    num_decoder_layers=24,
    **_ORIG,
  ),
  "t5_11b": T5Config(
    d_model=1024,
    num_heads=128,
    d_kv=128,
    d_ff=65536,
    num_encoder_layers=24,
    num_decoder_layers=24,
    **_ORIG,
  ),
}
# Aliases researchers use for the same dimensions.
for _n in ("small", "base", "large", "xl", "xxl"):
  SIZES[f"t5_1_1_{_n}"] = SIZES[_n]
  SIZES[f"flan_t5_{_n}"] = SIZES[_n]


def get_config(size: str, **overrides) -> T5Config:
  """A named size, optionally with fields replaced (e.g. `dropout_rate=0.0`)."""
  if size not in SIZES:
    raise ValueError(f"unknown T5 size {size!r}; known: {sorted(SIZES)}")
  return SIZES[size].replace(**overrides)
