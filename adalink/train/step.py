"""Loss and the optimiser step, differentiating only the trainable part of the variables.

The variables are split once (`adalink.peft.methods.split_variables`) into a trainable and a
frozen dict. Gradients are taken with respect to the trainable dict alone, and the optimiser is
initialised on it alone, so frozen weights have neither gradients nor optimiser state: they are
inputs of the step, not state it carries.
"""

from __future__ import annotations

from typing import Callable, Dict, Mapping, Tuple

import jax
import jax.numpy as jnp
import optax

from adalink.peft import methods

Array = jax.Array

# Batch features the model takes as keyword arguments (anything else is data bookkeeping).
MODEL_FEATURES = (
  "encoder_input_tokens",
  "decoder_input_tokens",
  "decoder_target_tokens",
  "images",
  "task_id",
  "encoder_segment_ids",
  "decoder_segment_ids",
  "encoder_positions",
  "decoder_positions",
)


def model_inputs(batch: Mapping[str, Array]) -> Dict[str, Array]:
  return {k: batch[k] for k in MODEL_FEATURES if k in batch}


def cross_entropy(
  logits: Array, targets: Array, weights: Array, label_smoothing: float = 0.0
) -> Tuple[Array, Array, Array]:
  """Summed weighted token cross-entropy, the weight sum, and the number of correct tokens."""
  logits = logits.astype(jnp.float32)
  vocab = logits.shape[-1]
  logp = jax.nn.log_softmax(logits)
  onehot = jax.nn.one_hot(targets, vocab, dtype=jnp.float32)
  if label_smoothing:
    onehot = onehot * (1.0 - label_smoothing) + label_smoothing / vocab
  token_loss = -jnp.sum(onehot * logp, axis=-1)
  correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  w = weights.astype(jnp.float32)
  return jnp.sum(token_loss * w), jnp.sum(w), jnp.sum(correct * w)


def loss_fn(
  model, trainable, frozen, batch, rng, deterministic: bool = False, label_smoothing: float = 0.0
):
  variables = methods.merge_variables(trainable, frozen)
  logits = model.apply(
    variables,
    **model_inputs(batch),
    deterministic=deterministic,
    rngs={"dropout": rng} if not deterministic else None,
  )
  loss_sum, weight_sum, correct = cross_entropy(
    logits, batch["decoder_target_tokens"], batch["decoder_loss_weights"], label_smoothing
  )
  loss = loss_sum / jnp.maximum(weight_sum, 1.0)
  return loss, {"loss_sum": loss_sum, "weight_sum": weight_sum, "correct": correct}


def make_train_step(
  model, optimizer: optax.GradientTransformation, label_smoothing: float = 0.0
) -> Callable:
  """step(trainable, opt_state, frozen, batch, rng) -> (trainable, opt_state, metrics)."""

  def step(trainable, opt_state, frozen, batch, rng):
    grad_fn = jax.value_and_grad(loss_fn, argnums=1, has_aux=True)
    (loss, aux), grads = grad_fn(model, trainable, frozen, batch, rng, False, label_smoothing)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    trainable = optax.apply_updates(trainable, updates)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **aux}
    return trainable, opt_state, metrics

  return step
