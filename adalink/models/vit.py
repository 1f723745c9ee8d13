"""The frozen ViT image encoder of the PaLI-style setup, in Flax.

Images become a sequence of patch embeddings that a multimodal model consumes next to text
embeddings (where AdaLink's image-stream adapter applies). The encoder itself is frozen in every
method: its output goes through `jax.lax.stop_gradient`, so no gradient can reach its parameters
whatever a trainer's masks say, and it has no dropout.

Architecture (ViT, Dosovitskiy et al. 2020, as in Hugging Face `ViTModel`, SigLIP's vision tower
and big_vision's `vit.py`): non-overlapping p x p patches, a linear patch embedding with bias,
learned position embeddings, optionally a learned [CLS] token, `depth` pre-LN blocks
(LayerNorm -> multi-head self-attention with biases and softmax(q k^T / sqrt(head_dim)) ->
residual; LayerNorm -> MLP with biases -> residual), then a final LayerNorm.

Parameter tree (every leaf created with logical axis names, so `adalink.train.partitioning`
shards it like T5; names with no rule there, `patch` and `image_tokens`, stay replicated):
  embedding/kernel (p*p*C, width) ('patch', 'embed'), embedding/bias (width,)
      the patch projection; patches are flattened in (row, column, channel) order, which is a
      conv kernel (p, p, C, width) reshaped
  pos_embedding (num_patches, width) ('image_tokens', 'embed'), added to the patch tokens
  cls (width,) ('embed',), only with `use_cls_token`: prepended after the position embeddings
      are added (big_vision's convention), so it already holds its own position embedding
  encoder/layers_i/{pre_attention_layer_norm, pre_mlp_layer_norm}/{scale, bias}
  encoder/layers_i/attention/{query, key, value}/kernel (width, width) ('embed', 'joined_kv')
      and bias; attention/out/kernel ('joined_kv', 'embed') and bias
  encoder/layers_i/mlp/wi/kernel (width, mlp_dim) ('embed', 'mlp'), mlp/wo/kernel and biases
  encoder/encoder_norm/{scale, bias}
Checkpoint readers for Hugging Face ViT / SigLIP and big_vision `.npz` files are in
`adalink.convert.hf_vit` and `adalink.convert.big_vision_vit`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import config_base, layers
from adalink.models.layers import BATCH, EMBED, HEADS, KV, LENGTH

Array = jax.Array

# 'none': every token [B, N(+1), width] (what PaLI feeds the language model); 'cls': the final
# [CLS] token [B, width]; 'gap': the mean over patch tokens [B, width].
POOLINGS = ("none", "cls", "gap")
# Logical names of the two ViT-only parameter axes (no partitioning rule: replicated).
PATCH, IMAGE_TOKENS = "patch", "image_tokens"


@dataclasses.dataclass(frozen=True)
class ViTConfig(config_base.ConfigBase):
  """Architecture of one ViT plus the run-time choices `pooling`, `keep_cls_token` and `dtype`.

  Defaults follow big_vision / SigLIP (no [CLS] token, tanh GELU, eps 1e-6); a Hugging Face
  `ViTModel` is `use_cls_token=True, activation="gelu_exact", layer_norm_eps=1e-12`.
  """

  image_size: int
  patch_size: int
  width: int
  depth: int
  mlp_dim: int
  num_heads: int
  num_channels: int = 3
  use_cls_token: bool = False
  activation: str = "gelu"  # a name from `layers.activation_fn`
  layer_norm_eps: float = 1e-6
  pooling: str = "none"
  # With pooling 'none' and a [CLS] token: keep it as the first output token (else dropped).
  keep_cls_token: bool = False
  dtype: str = "float32"  # activations; parameters are always stored in float32

  def __post_init__(self):
    for field in (
      "image_size",
      "patch_size",
      "width",
      "depth",
      "mlp_dim",
      "num_heads",
      "num_channels",
    ):
      value = getattr(self, field)
      if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"ViTConfig.{field} must be a positive integer, got {value!r}")
    if self.image_size % self.patch_size:
      raise ValueError(
        f"ViTConfig.image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
      )
    if self.width % self.num_heads:
      raise ValueError(
        f"ViTConfig.width {self.width} is not divisible by num_heads {self.num_heads}"
      )
    for field in ("use_cls_token", "keep_cls_token"):
      if not isinstance(getattr(self, field), bool):
        raise ValueError(f"ViTConfig.{field} must be True or False, got {getattr(self, field)!r}")
    layers.activation_fn(self.activation)
    if (
      not isinstance(self.layer_norm_eps, (int, float))
      or isinstance(self.layer_norm_eps, bool)
      or not self.layer_norm_eps > 0
    ):
      raise ValueError(
        f"ViTConfig.layer_norm_eps must be a positive number, got {self.layer_norm_eps!r}"
      )
    if self.pooling not in POOLINGS:
      raise ValueError(f"ViTConfig.pooling must be one of {POOLINGS}, got {self.pooling!r}")
    if self.pooling == "cls" and not self.use_cls_token:
      raise ValueError("ViTConfig.pooling 'cls' needs use_cls_token=True")
    if self.keep_cls_token and not (self.use_cls_token and self.pooling == "none"):
      raise ValueError(
        "ViTConfig.keep_cls_token needs use_cls_token=True and pooling 'none' "
        f"(got use_cls_token={self.use_cls_token}, pooling={self.pooling!r})"
      )
    self.check_dtype()

  @property
  def grid_size(self) -> int:
    return self.image_size // self.patch_size

  @property
  def num_patches(self) -> int:
    return self.grid_size**2

  @property
  def head_dim(self) -> int:
    return self.width // self.num_heads

  @property
  def output_length(self) -> int:
    """Tokens per image in the output of pooling 'none'."""
    return self.num_patches + int(self.keep_cls_token)


# Fields that describe the network (what a checkpoint must agree with); the others are run-time.
ARCHITECTURE_FIELDS = (
  "image_size",
  "patch_size",
  "width",
  "depth",
  "mlp_dim",
  "num_heads",
  "num_channels",
  "use_cls_token",
  "activation",
  "layer_norm_eps",
)

# Real dimensions (big_vision `decode_variant`, Table 2 of arXiv 2106.04560; So400m from
# arXiv 2305.13035) at 224 px, the resolution of PaLI-3 / PaliGemma-224 (So400m/14: 256 tokens).
SIZES: Dict[str, ViTConfig] = {
  # Test size: 16 patches of 8 x 8, compiles in a second on a CPU.
  "tiny": ViTConfig(image_size=32, patch_size=8, width=32, depth=2, mlp_dim=64, num_heads=4),
  "B/16": ViTConfig(image_size=224, patch_size=16, width=768, depth=12, mlp_dim=3072, num_heads=12),
  "L/16": ViTConfig(
    image_size=224, patch_size=16, width=1024, depth=24, mlp_dim=4096, num_heads=16
  ),
  "So400m/14": ViTConfig(
    image_size=224, patch_size=14, width=1152, depth=27, mlp_dim=4304, num_heads=16
  ),
}


def get_config(size: str, **overrides) -> ViTConfig:
  """A named size, optionally with fields replaced (e.g. `image_size=384`, `use_cls_token=True`)."""
  if size not in SIZES:
    raise ValueError(f"unknown ViT size {size!r}; known: {sorted(SIZES)}")
  return SIZES[size].replace(**overrides)


def patchify(images: Array, patch_size: int) -> Array:
  """[B, H, W, C] -> [B, (H/p) * (W/p), p * p * C]: patches in row-major grid order, each
  flattened as (row, column, channel), the order of a (p, p, C, width) conv kernel's rows."""
  b, h, w, c = images.shape
  p = patch_size
  x = images.reshape(b, h // p, p, w // p, p, c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // p) * (w // p), p * p * c)


_KERNEL_INIT = nn.initializers.xavier_uniform()


def _dense(features: int, axes, dtype, name: str) -> layers.Dense:
  return layers.Dense(features, axes, _KERNEL_INIT, dtype, use_bias=True, name=name)


class SelfAttention(nn.Module):
  """Multi-head self-attention with biases and the standard 1/sqrt(head_dim) logit scale."""

  num_heads: int
  head_dim: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    width = x.shape[-1]
    inner = self.num_heads * self.head_dim
    split = lambda t: t.reshape(t.shape[:2] + (self.num_heads, self.head_dim))
    q, k, v = (
      split(_dense(inner, (EMBED, "joined_kv"), self.dtype, name)(x))
      for name in ("query", "key", "value")
    )
    q = layers.with_constraint(q, (BATCH, LENGTH, HEADS, KV))
    k = layers.with_constraint(k, (BATCH, LENGTH, HEADS, KV))
    v = layers.with_constraint(v, (BATCH, LENGTH, HEADS, KV))
    # Logits and softmax in float32 whatever the activation dtype (bf16 logits lose the ranking).
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
    logits = logits * (1.0 / math.sqrt(self.head_dim))
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    out = out.reshape(out.shape[:2] + (inner,))
    return _dense(width, ("joined_kv", EMBED), self.dtype, "out")(out)


class Mlp(nn.Module):
  """wi -> activation -> wo, both with biases."""

  mlp_dim: int
  activation: str
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    h = _dense(self.mlp_dim, (EMBED, layers.MLP), self.dtype, "wi")(x)
    h = layers.activation_fn(self.activation)(h)
    h = layers.with_constraint(h, (BATCH, LENGTH, layers.MLP))
    return _dense(x.shape[-1], (layers.MLP, EMBED), self.dtype, "wo")(h)


class EncoderBlock(nn.Module):
  """Pre-LN block: x + attn(LN(x)), then x + mlp(LN(x))."""

  config: ViTConfig

  @nn.compact
  def __call__(self, x: Array) -> Array:
    c = self.config
    dt = c.jnp_dtype
    h = layers.LayerNorm(c.layer_norm_eps, dt, name="pre_attention_layer_norm")(x)
    x = x + SelfAttention(c.num_heads, c.head_dim, dt, name="attention")(h)
    h = layers.LayerNorm(c.layer_norm_eps, dt, name="pre_mlp_layer_norm")(x)
    x = x + Mlp(c.mlp_dim, c.activation, dt, name="mlp")(h)
    return layers.with_constraint(x, (BATCH, LENGTH, EMBED))


class Encoder(nn.Module):
  config: ViTConfig

  @nn.compact
  def __call__(self, x: Array) -> Array:
    c = self.config
    for i in range(c.depth):
      x = EncoderBlock(c, name=f"layers_{i}")(x)
    return layers.LayerNorm(c.layer_norm_eps, c.jnp_dtype, name="encoder_norm")(x)


class ViT(nn.Module):
  """images [B, H, W, C] (already normalised floats, H = W = image_size) -> token embeddings.

  Pooling 'none' returns [B, num_patches (+1 with keep_cls_token), width], patch tokens in
  row-major grid order; 'cls' and 'gap' return [B, width]. The output carries no gradient.
  """

  config: ViTConfig

  @nn.compact
  def __call__(self, images: Array) -> Array:
    c = self.config
    dt = c.jnp_dtype
    expected = (c.image_size, c.image_size, c.num_channels)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
      raise ValueError(
        f"ViT expects images of shape [batch, {c.image_size}, {c.image_size}, "
        f"{c.num_channels}] (NHWC), got {tuple(images.shape)}"
      )
    patches = patchify(images.astype(dt), c.patch_size)
    x = _dense(c.width, (PATCH, EMBED), dt, "embedding")(patches)
    pos = layers.param_with_axes(
      self,
      "pos_embedding",
      nn.initializers.normal(stddev=1.0 / math.sqrt(c.width)),
      (c.num_patches, c.width),
      jnp.float32,
      (IMAGE_TOKENS, EMBED),
    )
    x = x + pos.astype(dt)[None]
    if c.use_cls_token:
      cls = layers.param_with_axes(
        self, "cls", nn.initializers.zeros, (c.width,), jnp.float32, (EMBED,)
      )
      cls = jnp.broadcast_to(cls.astype(dt), (x.shape[0], 1, c.width))
      x = jnp.concatenate([cls, x], axis=1)
    x = layers.with_constraint(x, (BATCH, LENGTH, EMBED))
    x = Encoder(c, name="encoder")(x)

    if c.pooling == "cls":
      out = x[:, 0]
    elif c.pooling == "gap":
      out = jnp.mean(x[:, int(c.use_cls_token) :], axis=1)
    else:
      out = x if (c.keep_cls_token or not c.use_cls_token) else x[:, 1:]
    # Frozen in every method (see the module docstring).
    return jax.lax.stop_gradient(out)


def _dummy_images(config: ViTConfig) -> Array:
  return jnp.zeros((1, config.image_size, config.image_size, config.num_channels), jnp.float32)


def init_params(config: ViTConfig, rng: Array) -> Dict[str, Any]:
  """Random parameters (unboxed), the tree `ViT(config).apply({'params': ...}, images)` takes."""
  variables = jax.jit(ViT(config).init)(rng, _dummy_images(config))
  return nn.unbox(variables["params"])


def abstract_params(config: ViTConfig) -> Dict[str, Any]:
  """Shapes and logical axes of every variable (boxed), computed without allocating anything."""
  model = ViT(config)
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), _dummy_images(config)))


def num_params(config: ViTConfig) -> int:
  abstract = nn.unbox(abstract_params(config))["params"]
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(abstract)))
