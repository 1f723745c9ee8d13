"""Primitives of the Gemma decoder (Gemma 1 and 2), apart from the network that stacks them.

Gemma differs from T5 in its norm (RMSNorm scaled by `1 + scale`, so a zero scale is the identity),
its positions (rotary, applied to queries and keys), its attention (grouped-query: fewer key/value
heads than query heads, logits scaled by `query_pre_attn_scalar ** -0.5`, optionally soft-capped
by `cap * tanh(logits / cap)`, optionally limited to a sliding window) and its MLP (GeGLU with the
tanh GELU). Projections are `adalink.models.layers.Dense`, so LoRA attaches to them by name
(`query`, `key`, `value`, `out`, `wi_0` (gate), `wi_1` (up), `wo` (down)) exactly as on T5.

Attention here takes its keys and values as arguments instead of computing them from one input:
the network runs a prefix once (keeping every layer's keys and values) and then continues from
them, in training and in cached decoding alike (see `adalink.models.gemma`).
"""

from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import attention, layers
from adalink.models.layers import BATCH, EMBED, HEADS, KV, LENGTH, MLP

Array = jax.Array


class GemmaRMSNorm(nn.Module):
  """x / rms(x) * (1 + scale), statistics and the scaling in float32, then cast back."""

  epsilon: float = 1e-6
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x32 = x.astype(jnp.float32)
    var = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    y = x32 * jax.lax.rsqrt(var + self.epsilon)
    scale = layers.param_with_axes(
      self, "scale", nn.initializers.zeros, (x.shape[-1],), self.param_dtype, (EMBED,)
    )
    return (y * (1.0 + scale.astype(jnp.float32))).astype(self.dtype)


def rotary(x: Array, positions: Array, theta: float) -> Array:
  """Rotary position embedding of x [b, l, heads, head_dim] at integer positions [b, l].

  The half-split form: dimension i pairs with i + head_dim/2, rotated by angle
  position * theta ** (-2i / head_dim). Angles are computed in float32.
  """
  half = x.shape[-1] // 2
  inv_freq = 1.0 / (theta ** (jnp.arange(0, half, dtype=jnp.float32) * 2.0 / x.shape[-1]))
  angles = positions.astype(jnp.float32)[..., None] * inv_freq  # [b, l, half]
  cos = jnp.cos(angles)[:, :, None, :]
  sin = jnp.sin(angles)[:, :, None, :]
  x32 = x.astype(jnp.float32)
  x1, x2 = x32[..., :half], x32[..., half:]
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x.dtype)


def soft_cap(x: Array, cap: Optional[float]) -> Array:
  """cap * tanh(x / cap): bounds x to (-cap, cap) smoothly; identity when cap is None."""
  if not cap:
    return x
  return cap * jnp.tanh(x / cap)


class GemmaAttention(nn.Module):
  """Grouped-query attention whose keys and values the caller assembles.

  `project(x, positions)` gives rotated queries [b, q, heads, hd] and rotated keys and values
  [b, k, kv_heads, hd]; `attend(q, keys, values, mask)` with a boolean mask [b, q, k] (True:
  attend) gives the output projection. A layer calls both; the network decides which keys a
  query sees.
  """

  d_model: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  query_scale: float
  rope_theta: float
  logit_cap: Optional[float] = None
  dtype: jnp.dtype = jnp.float32
  lora: Optional[layers.LoraSpec] = None

  def setup(self):
    init = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
    dense = lambda features, axes, name: layers.Dense(
      features, axes, init, self.dtype, jnp.float32, self.lora, name=name
    )
    self.query = dense(self.num_heads * self.head_dim, (EMBED, "joined_kv"), "query")
    self.key = dense(self.num_kv_heads * self.head_dim, (EMBED, "joined_kv"), "key")
    self.value = dense(self.num_kv_heads * self.head_dim, (EMBED, "joined_kv"), "value")
    self.out = dense(self.d_model, ("joined_kv", EMBED), "out")

  def project(self, x: Array, positions: Array, deterministic: bool = True):
    split = lambda t, h: t.reshape(t.shape[:2] + (h, self.head_dim))
    q = split(self.query(x, deterministic), self.num_heads)
    k = split(self.key(x, deterministic), self.num_kv_heads)
    v = split(self.value(x, deterministic), self.num_kv_heads)
    q = layers.with_constraint(rotary(q, positions, self.rope_theta), (BATCH, LENGTH, HEADS, KV))
    k = layers.with_constraint(rotary(k, positions, self.rope_theta), (BATCH, LENGTH, HEADS, KV))
    v = layers.with_constraint(v, (BATCH, LENGTH, HEADS, KV))
    return q, k, v

  def attend(
    self, q: Array, keys: Array, values: Array, mask: Array, deterministic: bool = True
  ) -> Array:
    b, lq, _, hd = q.shape
    groups = self.num_heads // self.num_kv_heads
    # Query heads are grouped by the key/value head they share: head h reads kv head h // groups.
    qg = q.reshape(b, lq, self.num_kv_heads, groups, hd)
    logits = jnp.einsum("bqngd,bknd->bngqk", qg, keys.astype(q.dtype)).astype(jnp.float32)
    logits = soft_cap(logits * self.query_scale, self.logit_cap)
    logits = jnp.where(mask[:, None, None], logits, attention.MASK_VALUE)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum("bngqk,bknd->bqngd", weights, values.astype(self.dtype))
    return self.out(out.reshape(b, lq, self.num_heads * hd), deterministic)


class GemmaMlp(nn.Module):
  """GeGLU: wo(gelu_tanh(wi_0 x) * wi_1 x); wi_0 is the gate, wi_1 the up projection."""

  d_model: int
  d_ff: int
  dtype: jnp.dtype = jnp.float32
  lora: Optional[layers.LoraSpec] = None

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    init = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
    dense = lambda features, axes, name: layers.Dense(
      features, axes, init, self.dtype, jnp.float32, self.lora, name=name
    )
    gate = jax.nn.gelu(dense(self.d_ff, (EMBED, MLP), "wi_0")(x, deterministic), approximate=True)
    h = gate * dense(self.d_ff, (EMBED, MLP), "wi_1")(x, deterministic)
    h = layers.with_constraint(h, (BATCH, LENGTH, MLP))
    return dense(self.d_model, (MLP, EMBED), "wo")(h, deterministic)


def key_mask(
  query_positions: Array,
  key_positions: Array,
  key_valid: Array,
  causal: bool,
  window: Optional[int],
) -> Array:
  """Which keys each query sees, [b, q, k]: valid keys, at or before the query when `causal`,
  and fewer than `window` positions back when a sliding window is set."""
  qp = query_positions[:, :, None]
  kp = key_positions[:, None, :]
  mask = jnp.broadcast_to(key_valid[:, None, :], qp.shape[:2] + kp.shape[2:])
  if causal:
    mask = mask & (kp <= qp)
  if window:
    mask = mask & (qp - kp < window)
  return mask


def stack_layers_kv(kv: Tuple[Array, ...]) -> Array:
  """Per-layer [b, l, kv_heads, hd] arrays -> one [b, layers, l, kv_heads, hd] array."""
  return jnp.stack(kv, axis=1)


class KVCache(nn.Module):
  """One layer's keys and values of the continuation, for decoding one slot per call.

  The first call (at the full decode length) only creates the zeroed cache and returns its input;
  later calls write their slot at `start` and return the whole cache. Named `cached_key` /
  `cached_value` so beam search reorders them with the beams.
  """

  @nn.compact
  def __call__(self, k: Array, v: Array, start: Array) -> Tuple[Array, Array]:
    initialized = self.has_variable("cache", "cached_key")
    cached_k = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
    cached_v = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
    if not initialized:
      return k, v
    cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k, (0, start, 0, 0))
    cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v, (0, start, 0, 0))
    return cached_k.value, cached_v.value


class CacheIndex(nn.Module):
  """The continuation's next slot while decoding: returns (slot, whether the cache exists) and
  moves the slot on by `steps` once it does."""

  @nn.compact
  def __call__(self, steps: int) -> Tuple[Array, bool]:
    initialized = self.has_variable("cache", "cache_index")
    index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
    start = index.value
    if initialized:
      index.value = start + steps
    return start, initialized
