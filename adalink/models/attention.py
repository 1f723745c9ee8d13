"""T5's attention in Flax: the relative-position biases, multi-head attention with its decoding
cache, and the boolean masks (padding, causal, packed segments) turned into additive biases.

Built from the primitives of `adalink.models.layers`: the projections are its `Dense`, so LoRA
attaches to `query` / `key` / `value` / `out` by name, and every parameter and activation carries
the same logical axis names. `MASK_VALUE` is also what the Gemma attention masks with.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn

from adalink.models.layers import (
  BATCH,
  EMBED,
  HEADS,
  KV,
  LENGTH,
  Dense,
  LoraSpec,
  param_with_axes,
  with_constraint,
)

Array = jax.Array


def relative_position_bucket(
  relative_position: Array, bidirectional: bool, num_buckets: int, max_distance: int
) -> Array:
  """Maps key_position - query_position to T5's log-spaced buckets.

  Half the buckets (the first half of each direction when bidirectional) are exact distances;
  the rest grow logarithmically up to `max_distance`, beyond which everything shares the last
  bucket. The float32 arithmetic follows the reference exactly, since a one-ulp difference at a
  bucket boundary would change which bias an attention logit gets.
  """
  rel = relative_position.astype(jnp.int32)
  bucket = jnp.zeros_like(rel)
  if bidirectional:
    num_buckets //= 2
    bucket = bucket + (rel > 0).astype(jnp.int32) * num_buckets
    dist = jnp.abs(rel)
  else:
    dist = -jnp.minimum(rel, 0)
  max_exact = num_buckets // 2
  is_small = dist < max_exact
  safe = jnp.maximum(dist, 1).astype(jnp.float32)
  large = (
    jnp.log(safe / max_exact)
    / np.float32(math.log(max_distance / max_exact))
    * (num_buckets - max_exact)
  )
  large = max_exact + large.astype(jnp.int32)
  large = jnp.minimum(large, num_buckets - 1)
  return bucket + jnp.where(is_small, dist, large)


class RelativePositionBiases(nn.Module):
  """One learned scalar per (bucket, head), shared by every layer of a stack (T5 convention)."""

  num_buckets: int
  max_distance: int
  num_heads: int
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, query_positions: Array, key_positions: Array, bidirectional: bool) -> Array:
    """Positions are [batch or 1, length]; returns biases [batch or 1, heads, q_len, k_len]."""
    rel = key_positions[:, None, :] - query_positions[:, :, None]
    buckets = relative_position_bucket(rel, bidirectional, self.num_buckets, self.max_distance)
    table = param_with_axes(
      self,
      "rel_embedding",
      nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
      (self.num_heads, self.num_buckets),
      self.param_dtype,
      (HEADS, "relpos_buckets"),
    )
    # Gather as a one-hot contraction: cheaper to shard and to differentiate than a gather.
    onehot = jax.nn.one_hot(buckets, self.num_buckets, dtype=self.dtype)
    return jnp.einsum("hn,bqkn->bhqk", table.astype(self.dtype), onehot)


class MultiHeadAttention(nn.Module):
  """T5 attention: no 1/sqrt(d) logit scaling (folded into the query init), softmax in float32.

  `bias` carries both the relative-position biases and the mask (as large negatives). With
  `decode=True` keys and values are appended to a cache of the length the cache was created
  with, one step at a time.
  """

  num_heads: int
  head_dim: int
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32
  lora: Optional[LoraSpec] = None

  @nn.compact
  def __call__(
    self,
    inputs_q: Array,
    inputs_kv: Array,
    bias: Array,
    deterministic: bool = True,
    decode: bool = False,
  ) -> Array:
    d_model = inputs_q.shape[-1]
    inner = self.num_heads * self.head_dim
    fan_in = lambda scale: nn.initializers.variance_scaling(scale, "fan_in", "normal")
    dense = lambda features, axes, init, name: Dense(
      features, axes, init, self.dtype, self.param_dtype, self.lora, name=name
    )
    # Depth scaling of the query init replaces the 1/sqrt(head_dim) on the logits.
    q = dense(inner, (EMBED, "joined_kv"), fan_in(1.0 / self.head_dim), "query")(
      inputs_q, deterministic
    )
    k = dense(inner, (EMBED, "joined_kv"), fan_in(1.0), "key")(inputs_kv, deterministic)
    v = dense(inner, (EMBED, "joined_kv"), fan_in(1.0), "value")(inputs_kv, deterministic)
    split = lambda t: t.reshape(t.shape[:2] + (self.num_heads, self.head_dim))
    q, k, v = split(q), split(k), split(v)
    q = with_constraint(q, (BATCH, LENGTH, HEADS, KV))
    k = with_constraint(k, (BATCH, LENGTH, HEADS, KV))
    v = with_constraint(v, (BATCH, LENGTH, HEADS, KV))

    if decode:
      k, v = self._update_cache(k, v)

    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
    logits = logits + bias.astype(jnp.float32)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    weights = nn.Dropout(self.dropout_rate)(weights, deterministic=deterministic)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    out = out.reshape(out.shape[:2] + (inner,))
    return dense(d_model, ("joined_kv", EMBED), fan_in(1.0), "out")(out, deterministic)

  def _update_cache(self, k: Array, v: Array) -> Tuple[Array, Array]:
    """Writes this step's key/value at the cache index and returns the whole cache."""
    initialized = self.has_variable("cache", "cached_key")
    cached_k = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
    cached_v = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
    index = self.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
    if not initialized:
      # The first call only shapes the cache (at its full length); nothing to write yet.
      return k, v
    if k.shape[1] != 1:
      raise ValueError(f"cached decoding takes one token per step, got length {k.shape[1]}")
    i = index.value
    cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k, (0, i, 0, 0))
    cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v, (0, i, 0, 0))
    index.value = i + 1
    return cached_k.value, cached_v.value


# Large negative used for masked attention logits; finite so fully-masked rows stay finite.
MASK_VALUE = -1e10


def mask_to_bias(mask: Array, dtype=jnp.float32) -> Array:
  """Boolean [b, 1 or h, q, k] (True = attend) -> additive bias."""
  return jnp.where(mask, 0.0, MASK_VALUE).astype(dtype)


def attention_mask(query_valid: Array, key_valid: Array) -> Array:
  """[b, q] and [b, k] validity -> [b, 1, q, k] mask."""
  return (query_valid[:, :, None] & key_valid[:, None, :])[:, None]


def causal_mask(length: int) -> Array:
  idx = jnp.arange(length)
  return (idx[None, :] <= idx[:, None])[None, None]


def segment_mask(query_segments: Array, key_segments: Array) -> Array:
  """Packed examples attend only within their own segment: [b, 1, q, k]."""
  return (query_segments[:, :, None] == key_segments[:, None, :])[:, None]
