"""The Gemma decoder (Gemma 1 and Gemma 2) in Flax, run as a prefix and its continuation.

A decoder-only model is presented through the same two steps as the T5 encoder-decoder, so the
trainer, the evaluator and the cached greedy / beam decoders serve it unchanged:

  * `prefill(embeddings, mask)` (the "encoder") runs every layer over the prefix (the task input;
    for PaliGemma the image tokens and the prompt) and returns each layer's keys and values plus
    the prefix's last input embedding. Prefix tokens attend causally (Gemma) or to the whole
    prefix (`prefix_attention='full'`, PaliGemma's prefix-LM).
  * `continue_from(prefilled, mask, embeddings)` (the "decoder") runs the suffix. Its slot 0 is the
    prefix's last token asked again: it takes that token's embedding and position and sees the
    prefix's keys but not its own, so its output is exactly the prefix's last output, the one
    that predicts the first suffix token. Slot s > 0 is suffix token s - 1 at position
    n - 1 + s for a prefix of n tokens. The token a batch puts in slot 0 (the "start token") is
    therefore never read, and the logits of slot s predict suffix token s, as the T5 decoder's do.
    With `decode=True` one slot is run per call against a key/value cache.

Every result equals that of one causal (or prefix-LM) pass over the concatenated sequence, which
is what the parity tests against `transformers` check. As for T5, `embed` and the two passes are
separate, so AdaLink and prompt tuning act on embeddings without touching a block; the same
table, scaled by sqrt(d_model), is also the tied output layer.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import gemma_layers as gl
from adalink.models import layers
from adalink.models.gemma_config import GemmaConfig
from adalink.models.layers import BATCH, EMBED, LENGTH

Array = jax.Array


class GemmaBlock(nn.Module):
  """One decoder layer: norm, attention (+ Gemma 2's post-norm), residual; norm, GeGLU MLP
  (+ post-norm), residual. Split in two so the caller can choose the attended keys."""

  config: GemmaConfig
  local: bool
  lora: Optional[layers.LoraSpec] = None

  def setup(self):
    c = self.config
    norm = lambda name: gl.GemmaRMSNorm(c.rms_norm_eps, c.jnp_dtype, name=name)
    self.pre_attention_norm = norm("pre_attention_norm")
    self.attention = gl.GemmaAttention(
      c.d_model,
      c.num_heads,
      c.num_kv_heads,
      c.head_dim,
      c.query_scale,
      c.rope_theta,
      c.attn_logit_softcap,
      c.jnp_dtype,
      self.lora,
      name="attention",
    )
    self.pre_ffw_norm = norm("pre_ffw_norm")
    self.mlp = gl.GemmaMlp(c.d_model, c.d_ff, c.jnp_dtype, self.lora, name="mlp")
    if c.version == 2:
      self.post_attention_norm = norm("post_attention_norm")
      self.post_ffw_norm = norm("post_ffw_norm")

  def qkv(self, x: Array, positions: Array, deterministic: bool = True):
    return self.attention.project(self.pre_attention_norm(x), positions, deterministic)

  def finish(self, x, q, keys, values, mask, deterministic: bool = True) -> Array:
    a = self.attention.attend(q, keys, values, mask, deterministic)
    if self.config.version == 2:
      a = self.post_attention_norm(a)
    x = x + a
    m = self.mlp(self.pre_ffw_norm(x), deterministic)
    if self.config.version == 2:
      m = self.post_ffw_norm(m)
    return layers.with_constraint(x + m, (BATCH, LENGTH, EMBED))


def prefix_positions(mask: Array) -> Array:
  """Positions of a right-padded prefix's tokens (pads get the last real position)."""
  return jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1, 0)


class Gemma(nn.Module):
  """The Gemma decoder; `lora` (optional) attaches LoRA to the named projections."""

  config: GemmaConfig
  lora: Optional[layers.LoraSpec] = None

  def setup(self):
    c = self.config
    self.token_embedder = layers.Embed(
      c.vocab_size,
      c.d_model,
      c.jnp_dtype,
      embedding_init=nn.initializers.normal(stddev=c.d_model**-0.5),
      name="token_embedder",
    )
    if c.separate_input_embedding:
      self.input_embedder = layers.Embed(
        c.vocab_size, c.d_model, c.jnp_dtype, name="input_embedder"
      )
    self.blocks = [
      GemmaBlock(c, c.is_local(i), self.lora, name=f"layers_{i}") for i in range(c.num_layers)
    ]
    self.final_norm = gl.GemmaRMSNorm(c.rms_norm_eps, c.jnp_dtype, name="final_norm")
    # Decoding state (the `cache` collection only; no parameters).
    self.caches = [gl.KVCache(name=f"cache_{i}") for i in range(c.num_layers)]
    self.cache_index = gl.CacheIndex(name="cache_index")

  def embed(self, tokens: Array) -> Array:
    """Token ids [b, l] -> table rows [b, l, d], before the sqrt(d) scaling (AdaLink's input)."""
    if self.config.separate_input_embedding:
      return self.input_embedder(tokens)
    return self.token_embedder(tokens)

  def _scaled(self, embedded: Array) -> Array:
    c = self.config
    # The scale is rounded to the activation dtype first, as the reference implementation does.
    return embedded.astype(c.jnp_dtype) * jnp.asarray(math.sqrt(c.d_model), c.jnp_dtype)

  def _window(self, layer: int) -> Optional[int]:
    return self.config.sliding_window if self.config.is_local(layer) else None

  def prefill(self, embedded: Array, mask: Array, deterministic: bool = True) -> Dict[str, Array]:
    """Runs the prefix [b, n, d] (`mask` [b, n] True on real tokens, right-padded); returns
    {'keys', 'values': [b, layers, n, kv_heads, hd], 'last': [b, d] the last real embedding}."""
    c = self.config
    mask = mask.astype(bool)
    positions = prefix_positions(mask)
    x = self._scaled(embedded)
    keys, values = [], []
    for i, block in enumerate(self.blocks):
      q, k, v = block.qkv(x, positions, deterministic)
      # A fully attended prefix is one block: its tokens see each other whatever the window
      # (the window limits only causal attention, as in the reference PaliGemma 2).
      causal = c.prefix_attention == "causal"
      m = gl.key_mask(positions, positions, mask, causal, self._window(i) if causal else None)
      x = block.finish(x, q, k, v, m, deterministic)
      keys.append(k)
      values.append(v)
    last_index = jnp.maximum(jnp.sum(mask, axis=-1) - 1, 0)
    last = jnp.take_along_axis(embedded, last_index[:, None, None], axis=1)[:, 0]
    return {
      "keys": gl.stack_layers_kv(tuple(keys)),
      "values": gl.stack_layers_kv(tuple(values)),
      "last": last,
    }

  def continue_from(
    self,
    prefilled: Dict[str, Array],
    prefix_mask: Array,
    embedded: Array,
    deterministic: bool = True,
    decode: bool = False,
  ) -> Array:
    """Logits [b, s, vocab] of the continuation whose slot embeddings are `embedded` [b, s, d]
    (slot 0's is replaced by the prefix's last; see the module docstring). With `decode`, one
    slot per call against the cache created by a first call at the full length."""
    c = self.config
    prefix_mask = prefix_mask.astype(bool)
    n = jnp.sum(prefix_mask, axis=-1)
    prefix_pos = prefix_positions(prefix_mask)
    b, s = embedded.shape[:2]
    if decode:
      start, initialized = self.cache_index(s)
      if initialized and s != 1:
        raise ValueError(f"cached decoding takes one token per step, got length {s}")
    else:
      start = jnp.array(0, jnp.int32)
    slots = start + jnp.arange(s)
    first = (slots == 0)[None, :, None]
    x = jnp.where(first, prefilled["last"][:, None, :].astype(embedded.dtype), embedded)
    x = self._scaled(x)
    positions = n[:, None] - 1 + slots[None, :]
    for i, block in enumerate(self.blocks):
      q, k, v = block.qkv(x, positions, deterministic)
      if decode:
        k, v = self.caches[i](k, v, start)
      key_slots = jnp.arange(k.shape[1])
      suffix_pos = jnp.broadcast_to(n[:, None] - 1 + key_slots[None, :], (b, k.shape[1]))
      # Slot 0 repeats the prefix's last token, whose key is already among the prefix's.
      suffix_valid = jnp.broadcast_to(key_slots[None, :] >= 1, (b, k.shape[1]))
      window = self._window(i)
      sees_prefix = gl.key_mask(positions, prefix_pos, prefix_mask, True, window)
      if c.prefix_attention == "full":
        # Slot 0 is the prefix's last token asked again: it sees what it saw in the prefill,
        # the whole prefix, with no window.
        whole = jnp.broadcast_to(prefix_mask[:, None, :], sees_prefix.shape)
        sees_prefix = jnp.where((slots == 0)[None, :, None], whole, sees_prefix)
      m = jnp.concatenate(
        [sees_prefix, gl.key_mask(positions, suffix_pos, suffix_valid, True, window)], axis=-1
      )
      keys = jnp.concatenate([prefilled["keys"][:, i].astype(k.dtype), k], axis=1)
      values = jnp.concatenate([prefilled["values"][:, i].astype(v.dtype), v], axis=1)
      x = block.finish(x, q, keys, values, m, deterministic)
    return self.logits(x)

  def logits(self, x: Array) -> Array:
    c = self.config
    logits = self.token_embedder.attend(self.final_norm(x)).astype(jnp.float32)
    logits = gl.soft_cap(logits, c.final_logit_softcap)
    return layers.with_constraint(logits, (BATCH, LENGTH, "vocab"))

  # The encoder-decoder interface the trainer and the decoders use (see the module docstring).
  def encode_for_decoder(self, encoder_input_tokens: Array, **unused):
    mask = encoder_input_tokens != self.config.pad_token_id
    return self.prefill(self.embed(encoder_input_tokens), mask), mask

  def decode(
    self,
    encoded,
    encoder_mask,
    decoder_input_tokens,
    decoder_target_tokens=None,
    encoder_segment_ids=None,
    decoder_segment_ids=None,
    decoder_positions=None,
    deterministic: bool = True,
    decode: bool = False,
  ) -> Array:
    del decoder_target_tokens, encoder_segment_ids, decoder_segment_ids, decoder_positions
    return self.continue_from(
      encoded, encoder_mask, self.embed(decoder_input_tokens), deterministic, decode
    )

  def __call__(
    self, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens=None, **unused
  ) -> Array:
    deterministic = unused.get("deterministic", True)
    encoded, mask = self.encode_for_decoder(encoder_input_tokens)
    return self.decode(encoded, mask, decoder_input_tokens, deterministic=deterministic)


def init_params(config: GemmaConfig, rng: Array) -> Dict[str, Any]:
  """Random parameters (unboxed) for a config."""
  model = Gemma(config)
  variables = jax.jit(model.init)(rng, jnp.ones((1, 4), jnp.int32), jnp.ones((1, 3), jnp.int32))
  return nn.unbox(variables["params"])


def abstract_params(config: GemmaConfig, lora: Optional[layers.LoraSpec] = None):
  """Shapes and logical axes of every variable, computed without allocating anything."""
  model = Gemma(config, lora=lora)
  return jax.eval_shape(
    lambda: model.init(
      jax.random.PRNGKey(0), jnp.ones((1, 4), jnp.int32), jnp.ones((1, 3), jnp.int32)
    )
  )
