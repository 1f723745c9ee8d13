"""The T5 encoder-decoder (original T5, T5 v1.1 and FLAN-T5) in Flax.

The network exposes the seam AdaLink and prompt tuning need: `embed(tokens)` and
`encode_embedded(embeddings, mask)` are separate steps, so a transform of the input embeddings sits
between the vocabulary table and the first encoder block without touching any block. The parameter
tree is the T5X one (`token_embedder`, `encoder/layers_N/...`, `decoder/logits_dense`), so T5X
checkpoints load as they are and Hugging Face ones through a fixed renaming.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import attention, layer_stack, layers
from adalink.models.layers import BATCH, EMBED, LENGTH

# The config and named sizes live in `t5_config`; `t5.T5Config`, `t5.SIZES` and `t5.get_config`
# stay importable from here.
from adalink.models.t5_config import SIZES, T5Config, get_config  # noqa: F401

Array = jax.Array
# An encoder node hook: (node index, hidden state [b, l, d]) -> hidden state. See `Encoder`.
NodeHook = Callable[[int, Array], Array]


class EncoderLayer(nn.Module):
  """One encoder block. `mid_hook` (optional) maps the residual stream between the attention and
  MLP sub-blocks, i.e. right after the attention residual add; None leaves the block as it was."""

  config: T5Config
  lora: Optional[layers.LoraSpec] = None

  @nn.compact
  def __call__(
    self,
    x: Array,
    bias: Array,
    deterministic: bool,
    mid_hook: Optional[Callable[[Array], Array]] = None,
  ) -> Array:
    c = self.config
    dt = c.jnp_dtype
    drop = lambda y: nn.Dropout(c.dropout_rate, broadcast_dims=(-2,))(
      y, deterministic=deterministic
    )
    h = layers.RMSNorm(c.layer_norm_epsilon, dt, name="pre_attention_layer_norm")(x)
    h = attention.MultiHeadAttention(
      c.num_heads, c.d_kv, c.dropout_rate, dt, lora=self.lora, name="attention"
    )(h, h, bias, deterministic)
    x = x + drop(h)
    if mid_hook is not None:
      x = mid_hook(x)
    h = layers.RMSNorm(c.layer_norm_epsilon, dt, name="pre_mlp_layer_norm")(x)
    h = layers.MlpBlock(c.d_ff, c.mlp_activations, c.dropout_rate, dt, lora=self.lora, name="mlp")(
      h, deterministic
    )
    x = x + drop(h)
    return layers.with_constraint(x, (BATCH, LENGTH, EMBED))


class DecoderLayer(nn.Module):
  config: T5Config
  lora: Optional[layers.LoraSpec] = None

  @nn.compact
  def __call__(
    self,
    x: Array,
    encoded: Array,
    self_bias: Array,
    cross_bias: Array,
    deterministic: bool,
    decode: bool,
  ) -> Array:
    c = self.config
    dt = c.jnp_dtype
    drop = lambda y: nn.Dropout(c.dropout_rate, broadcast_dims=(-2,))(
      y, deterministic=deterministic
    )
    h = layers.RMSNorm(c.layer_norm_epsilon, dt, name="pre_self_attention_layer_norm")(x)
    h = attention.MultiHeadAttention(
      c.num_heads, c.d_kv, c.dropout_rate, dt, lora=self.lora, name="self_attention"
    )(h, h, self_bias, deterministic, decode)
    x = x + drop(h)
    h = layers.RMSNorm(c.layer_norm_epsilon, dt, name="pre_cross_attention_layer_norm")(x)
    h = attention.MultiHeadAttention(
      c.num_heads, c.d_kv, c.dropout_rate, dt, lora=self.lora, name="encoder_decoder_attention"
    )(h, encoded, cross_bias, deterministic)
    x = x + drop(h)
    h = layers.RMSNorm(c.layer_norm_epsilon, dt, name="pre_mlp_layer_norm")(x)
    h = layers.MlpBlock(c.d_ff, c.mlp_activations, c.dropout_rate, dt, lora=self.lora, name="mlp")(
      h, deterministic
    )
    x = x + drop(h)
    return layers.with_constraint(x, (BATCH, LENGTH, EMBED))


def _positions(length: int) -> Array:
  return jnp.arange(length, dtype=jnp.int32)[None, :]


class Encoder(nn.Module):
  """Encoder stack over already-embedded inputs (the embedding table lives in `T5`).

  `node_hook` (optional) sees, and may replace, the hidden state at every node of the encoder's
  graph (the numbering of `adalink.peft.placement_graph`): node 0 is `embedded` as given (before the
  input dropout), node 2l-1 the residual stream after layer l's attention residual add, node 2l
  after its MLP residual add (before the final norm); 2L+1 nodes, visited in increasing order.
  Without a hook the computation is exactly the plain encoder's.
  """

  config: T5Config
  lora: Optional[layers.LoraSpec] = None

  @nn.compact
  def __call__(
    self,
    embedded: Array,
    mask: Array,
    segment_ids: Optional[Array] = None,
    positions: Optional[Array] = None,
    deterministic: bool = True,
    node_hook: Optional[NodeHook] = None,
  ) -> Array:
    c = self.config
    pos = positions if positions is not None else _positions(embedded.shape[1])
    bias = attention.RelativePositionBiases(
      c.relative_attention_num_buckets,
      c.relative_attention_max_distance,
      c.num_heads,
      c.jnp_dtype,
      name="relpos_bias",
    )(pos, pos, True)
    attend = attention.attention_mask(mask, mask)
    if segment_ids is not None:
      attend = attend & attention.segment_mask(segment_ids, segment_ids)
    bias = bias + attention.mask_to_bias(attend, c.jnp_dtype)
    if node_hook is not None:
      embedded = node_hook(0, embedded)
    x = nn.Dropout(c.dropout_rate, broadcast_dims=(-2,))(
      embedded.astype(c.jnp_dtype), deterministic=deterministic
    )
    if node_hook is None:
      x = layer_stack.run_stack(
        lambda name: EncoderLayer(c, self.lora, name=name),
        c.num_encoder_layers,
        x,
        lambda block, h: block(h, bias, deterministic),
        c.scan_layers,
        c.remat,
        variable_axes=("params", "adapters"),
      )
    elif c.scan_layers:
      # A hook sees each layer by its index and may own per-node parameters: that needs the
      # layers unrolled.
      raise ValueError(
        "an encoder node hook (adapter placement, gradient probes) needs unrolled layers: "
        "set model.scan_layers=False"
      )
    else:
      for i in range(c.num_encoder_layers):
        mid_hook = lambda h, node=2 * i + 1: node_hook(node, h)
        x = EncoderLayer(c, self.lora, name=f"layers_{i}")(x, bias, deterministic, mid_hook)
        x = node_hook(2 * i + 2, x)
    x = layers.RMSNorm(c.layer_norm_epsilon, c.jnp_dtype, name="encoder_norm")(x)
    return nn.Dropout(c.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)


class Decoder(nn.Module):
  """Decoder stack; with `decode=True` it takes one token per call and keeps a KV cache."""

  config: T5Config
  lora: Optional[layers.LoraSpec] = None

  @nn.compact
  def __call__(
    self,
    embedded: Array,
    encoded: Array,
    encoder_mask: Array,
    decoder_mask: Optional[Array] = None,
    encoder_segment_ids: Optional[Array] = None,
    decoder_segment_ids: Optional[Array] = None,
    decoder_positions: Optional[Array] = None,
    deterministic: bool = True,
    decode: bool = False,
    shared_embedding: Optional[layers.Embed] = None,
  ) -> Array:
    c = self.config
    dt = c.jnp_dtype
    batch, length = embedded.shape[:2]
    relpos = attention.RelativePositionBiases(
      c.relative_attention_num_buckets,
      c.relative_attention_max_distance,
      c.num_heads,
      dt,
      name="relpos_bias",
    )
    if decode and self.has_variable("cache", "position"):
      # One step: the query sits at the cache position; keys span the whole cache, and the
      # causal mask hides slots not yet written.
      position = self.variable("cache", "position", lambda: jnp.array(0, jnp.int32))
      max_len = self.get_variable("cache", "max_length")
      q_pos = jnp.full((1, 1), position.value, jnp.int32)
      k_pos = jnp.arange(max_len.shape[0], dtype=jnp.int32)[None, :]
      self_bias = relpos(q_pos, k_pos, False)
      self_bias = self_bias + attention.mask_to_bias((k_pos <= q_pos)[:, None], dt)
      position.value = position.value + 1
      q_valid = jnp.ones((batch, 1), bool)
    else:
      if decode:
        # Shaping call: record the cache length (a shape, so it stays static under jit).
        self.variable("cache", "position", lambda: jnp.array(0, jnp.int32))
        self.variable("cache", "max_length", lambda: jnp.zeros((length,), jnp.int8))
      pos = decoder_positions if decoder_positions is not None else _positions(length)
      self_bias = relpos(pos, pos, False)
      attend = attention.causal_mask(length)
      if decoder_mask is not None:
        attend = attend & attention.attention_mask(decoder_mask, decoder_mask)
      if decoder_segment_ids is not None:
        attend = attend & attention.segment_mask(decoder_segment_ids, decoder_segment_ids)
      self_bias = self_bias + attention.mask_to_bias(attend, dt)
      q_valid = decoder_mask if decoder_mask is not None else jnp.ones((batch, length), bool)

    cross = attention.attention_mask(q_valid, encoder_mask)
    if decoder_segment_ids is not None and encoder_segment_ids is not None and not decode:
      cross = cross & attention.segment_mask(decoder_segment_ids, encoder_segment_ids)
    cross_bias = attention.mask_to_bias(cross, dt)

    x = nn.Dropout(c.dropout_rate, broadcast_dims=(-2,))(
      embedded.astype(dt), deterministic=deterministic
    )
    x = layer_stack.run_stack(
      lambda name: DecoderLayer(c, self.lora, name=name),
      c.num_decoder_layers,
      x,
      lambda block, h: block(h, encoded, self_bias, cross_bias, deterministic, decode),
      c.scan_layers,
      c.remat,
      variable_axes=("params", "adapters", "cache"),
    )
    x = layers.RMSNorm(c.layer_norm_epsilon, dt, name="decoder_norm")(x)
    x = nn.Dropout(c.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)
    if c.tie_word_embeddings:
      # Tied output: rescale by d_model**-0.5 because the table was trained at input scale.
      logits = shared_embedding.attend(x * (c.d_model**-0.5))
    else:
      logits = layers.Dense(
        c.vocab_size,
        (EMBED, "vocab"),
        nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"),
        dt,
        name="logits_dense",
      )(x)
    return layers.with_constraint(logits, (BATCH, LENGTH, "vocab"))


class T5(nn.Module):
  """Encoder-decoder T5. `lora` (optional) attaches LoRA to the named Dense layers.

  `lora_decoder` extends LoRA to the decoder; by default it adapts the encoder only, as the
  AdaLink paper's LoRA baseline does.
  """

  config: T5Config
  lora: Optional[layers.LoraSpec] = None
  lora_decoder: bool = False

  def setup(self):
    c = self.config
    self.token_embedder = layers.Embed(c.vocab_size, c.d_model, c.jnp_dtype, name="token_embedder")
    if c.separate_encoder_embedding:
      self.encoder_token_embedder = layers.Embed(
        c.vocab_size, c.d_model, c.jnp_dtype, name="encoder_token_embedder"
      )
    self.encoder = Encoder(c, self.lora, name="encoder")
    self.decoder = Decoder(c, self.lora if self.lora_decoder else None, name="decoder")

  def embed(self, tokens: Array) -> Array:
    """Encoder token ids [b, l] -> input embeddings [b, l, d] (what AdaLink transforms)."""
    if self.config.separate_encoder_embedding:
      return self.encoder_token_embedder(tokens)
    return self.token_embedder(tokens)

  def encode_embedded(
    self,
    embedded: Array,
    mask: Array,
    segment_ids: Optional[Array] = None,
    positions: Optional[Array] = None,
    deterministic: bool = True,
    node_hook: Optional[NodeHook] = None,
  ) -> Array:
    """Runs the encoder blocks on given input embeddings; `mask` [b, l] is True on real tokens.
    `node_hook` is passed to `Encoder` (adapter placement, gradient probes); None by default."""
    return self.encoder(
      embedded, mask.astype(bool), segment_ids, positions, deterministic, node_hook
    )

  def encode(
    self,
    tokens: Array,
    segment_ids: Optional[Array] = None,
    positions: Optional[Array] = None,
    deterministic: bool = True,
  ) -> Array:
    return self.encode_embedded(
      self.embed(tokens), tokens != self.config.pad_token_id, segment_ids, positions, deterministic
    )

  def encode_for_decoder(self, encoder_input_tokens: Array, **unused) -> Tuple[Array, Array]:
    """(encoded, encoder_mask) for decoding; method wrappers override it (e.g. prompts extend the
    mask). Extra features (task ids, images) are accepted and ignored by the plain model."""
    mask = encoder_input_tokens != self.config.pad_token_id
    return self.encode(encoder_input_tokens), mask

  def decode(
    self,
    encoded: Array,
    encoder_mask: Array,
    decoder_input_tokens: Array,
    decoder_target_tokens: Optional[Array] = None,
    encoder_segment_ids: Optional[Array] = None,
    decoder_segment_ids: Optional[Array] = None,
    decoder_positions: Optional[Array] = None,
    deterministic: bool = True,
    decode: bool = False,
  ) -> Array:
    """Decoder logits [b, l, vocab]. In training the decoder mask comes from the targets
    (position t is real when target t is), since inputs start with the padding-id BOS."""
    decoder_mask = None
    if decoder_target_tokens is not None and not decode:
      decoder_mask = decoder_target_tokens != self.config.pad_token_id
    return self.decoder(
      self.token_embedder(decoder_input_tokens),
      encoded,
      encoder_mask.astype(bool),
      decoder_mask,
      encoder_segment_ids,
      decoder_segment_ids,
      decoder_positions,
      deterministic,
      decode,
      shared_embedding=self.token_embedder,
    )

  def __call__(
    self,
    encoder_input_tokens: Array,
    decoder_input_tokens: Array,
    decoder_target_tokens: Optional[Array] = None,
    encoder_segment_ids: Optional[Array] = None,
    decoder_segment_ids: Optional[Array] = None,
    encoder_positions: Optional[Array] = None,
    decoder_positions: Optional[Array] = None,
    deterministic: bool = True,
  ) -> Array:
    encoder_mask = encoder_input_tokens != self.config.pad_token_id
    encoded = self.encode(
      encoder_input_tokens, encoder_segment_ids, encoder_positions, deterministic
    )
    return self.decode(
      encoded,
      encoder_mask,
      decoder_input_tokens,
      decoder_target_tokens,
      encoder_segment_ids,
      decoder_segment_ids,
      decoder_positions,
      deterministic,
    )


def init_params(
  config: T5Config, rng: Array, batch: int = 1, input_len: int = 8, target_len: int = 4
) -> Dict[str, Any]:
  """Random parameters (unboxed) for a config; shapes do not depend on the dummy lengths."""
  model = T5(config)
  # Jitted: one compilation instead of one per operation of the dummy forward pass.
  variables = jax.jit(model.init)(
    rng, jnp.ones((batch, input_len), jnp.int32), jnp.ones((batch, target_len), jnp.int32)
  )
  return nn.unbox(variables["params"])


def abstract_params(config: T5Config, lora: Optional[layers.LoraSpec] = None) -> Dict[str, Any]:
  """Shapes and logical axes of every variable, computed without allocating anything."""
  model = T5(config, lora=lora)
  return jax.eval_shape(
    lambda: model.init(
      jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32), jnp.ones((1, 4), jnp.int32)
    )
  )
