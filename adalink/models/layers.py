"""Transformer primitives for the T5 family, each parameter tagged with logical axis names.

The logical names (embed, vocab, mlp, heads, kv, joined_kv, relpos_buckets) are what the
partitioning rules in `adalink.train.partitioning` map onto a device mesh, so no layer here knows
about devices. Parameter names and kernel layouts follow the T5X checkpoint layout (2-D attention
kernels of shape (embed, heads * head_dim)) so a T5X checkpoint maps onto this tree one to one.
`LayerNorm` (with bias) and `Dense(use_bias=True)` exist for the ViT image encoder
(`adalink.models.vit`); the T5 layers use neither. T5's attention, its relative-position biases
and the attention masks are built from these in `adalink.models.attention`.

Low-rank adapters (LoRA) live in `Dense`: it is the one intrusive method, and keeping it in the
primitive means the blocks never change. Adapter weights go to the separate `adapters` variable
collection, never into `params`, so a frozen base and its adapters can be stored and swapped apart.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn

Array = jax.Array
Initializer = Callable[..., Array]

# The collection adapter weights are created in (see the module docstring).
ADAPTERS = "adapters"

# Logical axis names used by the activations (parameters carry their own, see each layer).
BATCH, LENGTH, EMBED, MLP, HEADS, KV = "batch", "length", "embed", "mlp", "heads", "kv"


def param_with_axes(
  module: nn.Module,
  name: str,
  init_fn: Initializer,
  shape: Sequence[int],
  dtype,
  axes: Tuple[str, ...],
  collection: str = "params",
) -> Array:
  """Creates (or reads) a parameter whose init is tagged with logical axis names.

  `collection="adapters"` puts the weight in the adapters collection; `params` holds the base.
  """
  if len(axes) != len(shape):
    raise ValueError(f"{module.name}/{name}: {len(axes)} axis names {axes} for shape {shape}")
  boxed_init = nn.with_logical_partitioning(init_fn, axes)
  if collection == "params":
    return module.param(name, boxed_init, tuple(shape), dtype)
  # `variable` needs the rng explicitly; only called at init, when the variable does not exist.
  init = lambda: boxed_init(module.make_rng("params"), tuple(shape), dtype)
  return module.variable(collection, name, init).value


def with_constraint(x: Array, axes: Tuple[str, ...]) -> Array:
  """Logical sharding constraint on an activation; a no-op outside a mesh with axis rules."""
  return nn.with_logical_constraint(x, axes)


@dataclasses.dataclass(frozen=True)
class LoraSpec:
  """Where and how LoRA attaches: `targets` are Dense names (query/key/value/out/wi/wi_0/wi_1/wo)."""

  rank: int
  alpha: float
  targets: Tuple[str, ...]
  dropout_rate: float = 0.0


class Dense(nn.Module):
  """y = x @ kernel over the last axis, optional LoRA branch; no bias unless `use_bias`.

  T5 has no biases, hence the default. `use_bias=True` adds a `bias` of shape (features,) tagged
  with the output axis name, for the ViT image encoder (see `adalink.models.vit`).

  The LoRA branch adds (alpha / r) * (x @ A) @ B with B zero-initialised, so at init the layer is
  exactly the frozen one. A and B live in the `adapters` collection under this layer's path.
  """

  features: int
  axes: Tuple[str, str]
  kernel_init: Initializer = nn.initializers.lecun_normal()
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32
  lora: Optional[LoraSpec] = None
  use_bias: bool = False
  bias_init: Initializer = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    kernel = param_with_axes(
      self, "kernel", self.kernel_init, (x.shape[-1], self.features), self.param_dtype, self.axes
    )
    y = jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = param_with_axes(
        self, "bias", self.bias_init, (self.features,), self.param_dtype, (self.axes[1],)
      )
      y = y + bias.astype(self.dtype)
    if self.lora is not None and self.name in self.lora.targets:
      y = y + self._lora_branch(x, deterministic)
    return y

  def _lora_branch(self, x: Array, deterministic: bool) -> Array:
    spec = self.lora
    # A gets the usual fan-in init so the branch's gradient wrt B is non-zero at step one.
    a = param_with_axes(
      self,
      "lora_a",
      nn.initializers.variance_scaling(1.0, "fan_in", "normal"),
      (x.shape[-1], spec.rank),
      self.param_dtype,
      (self.axes[0], None),
      ADAPTERS,
    )
    b = param_with_axes(
      self,
      "lora_b",
      nn.initializers.zeros,
      (spec.rank, self.features),
      self.param_dtype,
      (None, self.axes[1]),
      ADAPTERS,
    )
    h = nn.Dropout(spec.dropout_rate)(x, deterministic=deterministic)
    h = jnp.dot(h.astype(self.dtype), a.astype(self.dtype))
    return (spec.alpha / spec.rank) * jnp.dot(h, b.astype(self.dtype))


class Embed(nn.Module):
  """Token embedding table (vocab, embed); `attend` gives the tied-output logits."""

  num_embeddings: int
  features: int
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32
  embedding_init: Initializer = nn.initializers.normal(stddev=1.0)

  def setup(self):
    self.embedding = param_with_axes(
      self,
      "embedding",
      self.embedding_init,
      (self.num_embeddings, self.features),
      self.param_dtype,
      ("vocab", EMBED),
    )

  def __call__(self, tokens: Array) -> Array:
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
      raise TypeError(f"token ids must be integers, got {tokens.dtype}")
    return jnp.take(self.embedding, tokens, axis=0).astype(self.dtype)

  def attend(self, query: Array) -> Array:
    return jnp.dot(query.astype(self.dtype), self.embedding.T.astype(self.dtype))


class RMSNorm(nn.Module):
  """T5's layer norm: scale only, no mean subtraction, no bias; statistics in float32."""

  epsilon: float = 1e-6
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x32 = x.astype(jnp.float32)
    var = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    y = x32 * jax.lax.rsqrt(var + self.epsilon)
    scale = param_with_axes(
      self, "scale", nn.initializers.ones, (x.shape[-1],), self.param_dtype, (EMBED,)
    )
    return (y * scale.astype(jnp.float32)).astype(self.dtype)


class LayerNorm(nn.Module):
  """Standard layer norm with a learned scale and bias (ViT / SigLIP), statistics in float32.

  Mean and (biased) variance over the last axis, as `torch.nn.LayerNorm` and `flax.linen.LayerNorm`
  compute them, so converted checkpoints reproduce their reference outputs.
  """

  epsilon: float = 1e-6
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x32 = x.astype(jnp.float32)
    centered = x32 - jnp.mean(x32, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(centered), axis=-1, keepdims=True)
    y = centered * jax.lax.rsqrt(var + self.epsilon)
    scale = param_with_axes(
      self, "scale", nn.initializers.ones, (x.shape[-1],), self.param_dtype, (EMBED,)
    )
    bias = param_with_axes(
      self, "bias", nn.initializers.zeros, (x.shape[-1],), self.param_dtype, (EMBED,)
    )
    return (y * scale.astype(jnp.float32) + bias.astype(jnp.float32)).astype(self.dtype)


_ACTIVATIONS = {
  "relu": jax.nn.relu,
  # T5 v1.1 uses the tanh approximation of GELU ("gelu_new" in transformers).
  "gelu": lambda x: jax.nn.gelu(x, approximate=True),
  "gelu_exact": lambda x: jax.nn.gelu(x, approximate=False),
  "silu": jax.nn.silu,
  "linear": lambda x: x,
}


def activation_fn(name: str) -> Callable[[Array], Array]:
  if name not in _ACTIVATIONS:
    raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}")
  return _ACTIVATIONS[name]


class MlpBlock(nn.Module):
  """Position-wise MLP. One activation: `wi` -> act -> `wo` (T5). Two: gated, `wi_0`, `wi_1` (v1.1)."""

  d_ff: int
  activations: Tuple[str, ...] = ("relu",)
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32
  lora: Optional[LoraSpec] = None

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    d_model = x.shape[-1]
    init_in = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
    dense = lambda features, axes, name: Dense(
      features, axes, init_in, self.dtype, self.param_dtype, self.lora, name=name
    )
    if len(self.activations) == 1:
      h = activation_fn(self.activations[0])(dense(self.d_ff, (EMBED, MLP), "wi")(x, deterministic))
    else:
      h = None
      for i, act in enumerate(self.activations):
        hi = activation_fn(act)(dense(self.d_ff, (EMBED, MLP), f"wi_{i}")(x, deterministic))
        h = hi if h is None else h * hi
    h = with_constraint(h, (BATCH, LENGTH, MLP))
    h = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(h, deterministic=deterministic)
    return dense(d_model, (MLP, EMBED), "wo")(h, deterministic)
