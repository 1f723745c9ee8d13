"""Greedy and beam-search decoding over the cached T5 decoder, jitted end to end.

Decoding works with any Flax module that offers `encode_for_decoder(encoder_input_tokens,
**features) -> (encoded, encoder_mask)` and `decode(encoded, encoder_mask, decoder_input_tokens,
decode=True)` (one token a call, KV cache): T5, Gemma, PaliGemma and every method wrapper, so one
decoder serves all of them. Outputs exclude the start token; positions after EOS hold the pad id 0.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn

from adalink.models import layer_stack

Array = jax.Array
NEG_INF = -1.0e7


def as_variables(params_or_variables: Mapping[str, Any]) -> Dict[str, Any]:
  """Accepts a bare params tree or a variables dict ({'params': ..., 'adapters': ...})."""
  if "params" in params_or_variables:
    return dict(params_or_variables)
  return {"params": params_or_variables}


def _batch_size(encoded) -> int:
  """Rows of an encoder output: an array, or a tree of them (a decoder-only model's prefill)."""
  return jax.tree_util.tree_leaves(encoded)[0].shape[0]


def _init_cache(model: nn.Module, variables, encoded, encoder_mask: Array, max_decode_len: int):
  """Zero cache shaped for `max_decode_len` steps; built abstractly then materialised as zeros."""
  dummy = jnp.zeros((_batch_size(encoded), max_decode_len), jnp.int32)
  shapes = jax.eval_shape(
    lambda v: model.apply(
      v, encoded, encoder_mask, dummy, decode=True, mutable=["cache"], method="decode"
    )[1]["cache"],
    variables,
  )
  return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _step(model, variables, cache, encoded, encoder_mask, tokens):
  logits, updates = model.apply(
    {**variables, "cache": cache},
    encoded,
    encoder_mask,
    tokens[:, None],
    decode=True,
    mutable=["cache"],
    method="decode",
  )
  return logits[:, 0].astype(jnp.float32), updates["cache"]


@functools.partial(jax.jit, static_argnames=("model", "max_decode_len", "eos_id", "start_id"))
def _greedy(model, variables, encoder_input_tokens, features, max_decode_len, eos_id, start_id):
  encoded, mask = model.apply(
    variables, encoder_input_tokens, method="encode_for_decoder", **features
  )
  return _greedy_loop(model, variables, encoded, mask, max_decode_len, eos_id, start_id)


@functools.partial(jax.jit, static_argnames=("model", "max_decode_len", "eos_id", "start_id"))
def _greedy_encoded(model, variables, encoded, mask, max_decode_len, eos_id, start_id):
  return _greedy_loop(model, variables, encoded, mask, max_decode_len, eos_id, start_id)


def _greedy_loop(model, variables, encoded, mask, max_decode_len, eos_id, start_id):
  batch = _batch_size(encoded)
  cache = _init_cache(model, variables, encoded, mask, max_decode_len)
  out = jnp.zeros((batch, max_decode_len), jnp.int32)

  def cond(state):
    i, _, _, done, _ = state
    return (i < max_decode_len) & ~jnp.all(done)

  def body(state):
    i, prev, cache, done, out = state
    logits, cache = _step(model, variables, cache, encoded, mask, prev)
    nxt = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    nxt = jnp.where(done, 0, nxt)
    out = out.at[:, i].set(nxt)
    return i + 1, nxt, cache, done | (nxt == eos_id), out

  start = jnp.full((batch,), start_id, jnp.int32)
  init = (jnp.array(0), start, cache, jnp.zeros((batch,), bool), out)
  return jax.lax.while_loop(cond, body, init)[4]


def greedy_decode(
  model: nn.Module,
  params,
  encoder_input_tokens: Array,
  max_decode_len: int,
  eos_id: int = 1,
  start_id: int = 0,
  **features,
) -> Array:
  """Token ids [b, max_decode_len] chosen by argmax at every step; stops early once all hit EOS."""
  _check_len(max_decode_len)
  tokens = jnp.asarray(encoder_input_tokens, jnp.int32)
  return _greedy(model, as_variables(params), tokens, features, max_decode_len, eos_id, start_id)


def greedy_decode_encoded(
  model: nn.Module,
  params,
  encoded: Array,
  encoder_mask: Array,
  max_decode_len: int,
  eos_id: int = 1,
  start_id: int = 0,
) -> Array:
  """`greedy_decode` from an encoder output already computed (`encode_for_decoder`), e.g. one
  cached across requests or timed apart from the decoder loop."""
  _check_len(max_decode_len)
  return _greedy_encoded(
    model, as_variables(params), encoded, encoder_mask, max_decode_len, eos_id, start_id
  )


def brevity_penalty(length: Array, alpha: float) -> Array:
  """GNMT length normalisation ((5 + len) / 6) ** alpha; alpha = 0 ranks by total log-prob."""
  return ((5.0 + length.astype(jnp.float32)) / 6.0) ** alpha


def _gather_beams(x: Array, beam_idx: Array) -> Array:
  """x [b, k_old, ...], beam_idx [b, k_new] -> [b, k_new, ...]."""
  return jnp.take_along_axis(x, beam_idx.reshape(beam_idx.shape + (1,) * (x.ndim - 2)), axis=1)


def _gather_cache(cache, beam_idx: Array, batch: int, beams: int):
  """Reorders the per-sequence KV caches ([b*k, ...]) to follow the surviving beams."""

  def gather_batch(leaf):
    return _gather_beams(leaf.reshape((batch, beams) + leaf.shape[1:]), beam_idx).reshape(
      leaf.shape
    )

  def gather(path, leaf):
    if getattr(path[-1], "key", None) not in ("cached_key", "cached_value"):
      return leaf  # step counters and shape markers are shared by every beam
    # Scanned layers stack their caches on a leading layer axis (the batch is axis 1).
    scanned = any(getattr(p, "key", None) == layer_stack.SCANNED_NAME for p in path)
    return jax.vmap(gather_batch)(leaf) if scanned else gather_batch(leaf)

  return jax.tree_util.tree_map_with_path(gather, cache)


@functools.partial(
  jax.jit, static_argnames=("model", "max_decode_len", "beam_size", "alpha", "eos_id", "start_id")
)
def _beam(
  model,
  variables,
  encoder_input_tokens,
  features,
  max_decode_len,
  beam_size,
  alpha,
  eos_id,
  start_id,
):
  b, k, L = encoder_input_tokens.shape[0], beam_size, max_decode_len
  encoded, mask = model.apply(
    variables, encoder_input_tokens, method="encode_for_decoder", **features
  )
  # Every beam of an example reads the same encoder output: repeat along the batch axis.
  encoded = jax.tree_util.tree_map(lambda x: jnp.repeat(x, k, axis=0), encoded)
  mask = jnp.repeat(mask, k, axis=0)
  cache = _init_cache(model, variables, encoded, mask, L)

  alive_seq = jnp.zeros((b, k, L), jnp.int32)
  # Only beam 0 is live at the start, so the first expansion does not pick k copies of one token.
  alive_logp = jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32), (b, 1))
  fin_seq = jnp.zeros((b, k, L), jnp.int32)
  fin_score = jnp.full((b, k), NEG_INF, jnp.float32)

  def cond(state):
    i, _, alive_logp, _, fin_score, _ = state
    # Log-probs only fall, so the best alive beam's score is bounded by its score now under
    # the largest penalty; stop once no example's finished worst could still be beaten.
    best_alive = alive_logp[:, 0] / brevity_penalty(jnp.array(L), alpha)
    worst_fin = jnp.min(fin_score, axis=1)
    done = jnp.all(worst_fin > best_alive)
    return (i < L) & ~done

  def body(state):
    i, alive_seq, alive_logp, cache, fin_score, fin_seq = state
    prev = jnp.where(i == 0, start_id, alive_seq[:, :, jnp.maximum(i - 1, 0)]).reshape(b * k)
    logits, cache = _step(model, variables, cache, encoded, mask, prev)
    vocab = logits.shape[-1]
    logp = jax.nn.log_softmax(logits).reshape(b, k, vocab) + alive_logp[:, :, None]
    flat = logp.reshape(b, k * vocab)
    # 2k candidates guarantee k that do not end in EOS.
    cand_logp, cand_idx = jax.lax.top_k(flat, 2 * k)
    cand_beam, cand_tok = cand_idx // vocab, (cand_idx % vocab).astype(jnp.int32)
    cand_seq = _gather_beams(alive_seq, cand_beam).at[:, :, i].set(cand_tok)
    is_eos = cand_tok == eos_id

    # Finished pool: old finished plus candidates that just emitted EOS, scored with the penalty.
    new_fin = jnp.where(is_eos, cand_logp / brevity_penalty(i + 1, alpha), NEG_INF)
    pool_score = jnp.concatenate([fin_score, new_fin], axis=1)
    pool_seq = jnp.concatenate([fin_seq, cand_seq], axis=1)
    fin_score, top = jax.lax.top_k(pool_score, k)
    fin_seq = _gather_beams(pool_seq, top)

    # Alive: the best k candidates that did not end.
    alive_cand = jnp.where(is_eos, NEG_INF, cand_logp)
    alive_logp, top = jax.lax.top_k(alive_cand, k)
    alive_seq = _gather_beams(cand_seq, top)
    cache = _gather_cache(cache, _gather_beams(cand_beam, top), b, k)
    return i + 1, alive_seq, alive_logp, cache, fin_score, fin_seq

  state = (jnp.array(0), alive_seq, alive_logp, cache, fin_score, fin_seq)
  _, alive_seq, alive_logp, _, fin_score, fin_seq = jax.lax.while_loop(cond, body, state)
  # An example with no finished beam (all hit the length limit) falls back to its alive beams.
  has_fin = jnp.any(fin_score > NEG_INF / 2, axis=1)
  alive_score = alive_logp / brevity_penalty(jnp.array(L), alpha)
  seqs = jnp.where(has_fin[:, None, None], fin_seq, alive_seq)
  scores = jnp.where(has_fin[:, None], fin_score, alive_score)
  return seqs, scores


def beam_search(
  model: nn.Module,
  params,
  encoder_input_tokens: Array,
  max_decode_len: int,
  beam_size: int = 4,
  alpha: float = 0.6,
  eos_id: int = 1,
  start_id: int = 0,
  return_all: bool = False,
  **features,
):
  """Beam search with GNMT length normalisation. Returns the best sequence per example
  [b, max_decode_len], or (all k sequences [b, k, L], scores [b, k]) with `return_all`."""
  _check_len(max_decode_len)
  if beam_size < 1:
    raise ValueError(f"beam_size must be >= 1, got {beam_size}")
  seqs, scores = _beam(
    model,
    as_variables(params),
    jnp.asarray(encoder_input_tokens, jnp.int32),
    features,
    max_decode_len,
    beam_size,
    float(alpha),
    eos_id,
    start_id,
  )
  return (seqs, scores) if return_all else seqs[:, 0]


def decode(
  model: nn.Module,
  params,
  encoder_input_tokens: Array,
  max_decode_len: int,
  method: str = "greedy",
  beam_size: int = 4,
  alpha: float = 0.6,
  eos_id: int = 1,
  **features,
) -> Array:
  """Dispatch on a config's decoding method name."""
  if method == "greedy":
    return greedy_decode(model, params, encoder_input_tokens, max_decode_len, eos_id, **features)
  if method == "beam":
    return beam_search(
      model, params, encoder_input_tokens, max_decode_len, beam_size, alpha, eos_id, **features
    )
  raise ValueError(f"unknown decoding method {method!r}; use 'greedy' or 'beam'")


def trim_after_eos(tokens: np.ndarray, eos_id: int = 1) -> list:
  """Per-row token lists cut before the first EOS (what a vocabulary should detokenise)."""
  rows = [[int(t) for t in row] for row in np.asarray(tokens)]
  rows = [row[: row.index(eos_id)] if eos_id in row else row for row in rows]
  return [[t for t in row if t != 0] for row in rows]


def _check_len(max_decode_len: int):
  if not isinstance(max_decode_len, int) or max_decode_len <= 0:
    raise ValueError(f"max_decode_len must be a positive integer, got {max_decode_len!r}")
