"""Adafactor with linear warmup then reciprocal-square-root decay (the paper's recipe).

lr(step) = peak * step / warmup                   for step < warmup
lr(step) = peak * sqrt(warmup / step)             for step >= warmup
so the two pieces meet at `peak` when step == warmup, and the decay is 1/sqrt(step) after it.
Weights of scanned layers (stacked on a leading layer axis) are updated one layer at a time
(`per_layer`), so Adafactor factors, clips and scales each layer's slice as it would the unrolled
layer's weight, and a scanned run follows the unrolled run's trajectory. Adafactor runs with the schedule above (no parameter-scale multiplication, so `peak` is the step
size the paper quotes: 1e-3 AdaLink on GLUE, 1e-4 FT, 0.03 PEFT multimodal). Optional global-norm
gradient clipping, and gradient accumulation over k micro-batches (one update per k steps).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from adalink.models import layer_stack

_UNROLLED, _STACKED = "unrolled", "stacked"


def _labels(tree):
  def label(path, _):
    keys = [str(k.key) for k in path if hasattr(k, "key")]
    return _STACKED if layer_stack.is_stacked_path(keys) else _UNROLLED

  return jax.tree_util.tree_map_with_path(label, tree)


def _over_layer_axis(inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """`inner` applied to each slice of the leading (layer) axis, with its own state per slice."""

  def init(params):
    if not jax.tree_util.tree_leaves(params):
      return inner.init(params)
    return jax.vmap(inner.init)(params)

  def update(updates, state, params=None):
    if not jax.tree_util.tree_leaves(updates):
      return inner.update(updates, state, params)
    if params is None:
      return jax.vmap(lambda u, s: inner.update(u, s))(updates, state)
    return jax.vmap(inner.update)(updates, state, params)

  return optax.GradientTransformation(init, update)


def per_layer(inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """`inner` with the weights of scanned layers updated layer by layer (see the module doc).
  A tree without scanned layers gets `inner` itself, state structure included, so checkpoints of
  unrolled runs keep their layout."""
  split = optax.multi_transform({_UNROLLED: inner, _STACKED: _over_layer_axis(inner)}, _labels)

  def has_stacked(tree) -> bool:
    return _STACKED in jax.tree_util.tree_leaves(_labels(tree))

  def init(params):
    return split.init(params) if has_stacked(params) else inner.init(params)

  def update(updates, state, params=None):
    if has_stacked(updates):
      return split.update(updates, state, params)
    return inner.update(updates, state, params)

  return optax.GradientTransformation(init, update)


def warmup_rsqrt_schedule(peak: float, warmup_steps: int) -> optax.Schedule:
  if peak <= 0:
    raise ValueError(f"schedule.peak_lr must be > 0, got {peak!r}")
  if warmup_steps < 0:
    raise ValueError(f"schedule.warmup_steps must be >= 0, got {warmup_steps!r}")

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    if warmup_steps == 0:
      return peak * jnp.sqrt(1.0 / jnp.maximum(step, 1.0))
    warm = peak * step / warmup_steps
    decay = peak * jnp.sqrt(warmup_steps / jnp.maximum(step, 1.0))
    return jnp.where(step < warmup_steps, warm, decay)

  return schedule


def make_optimizer(optimizer_cfg: Mapping[str, Any], schedule_cfg: Mapping[str, Any]):
  """(optax transformation, schedule) from the `optimizer` and `schedule` config sections."""
  name = optimizer_cfg.get("name", "adafactor")
  schedule = warmup_rsqrt_schedule(
    float(schedule_cfg["peak_lr"]), int(schedule_cfg.get("warmup_steps", 0))
  )
  if name == "adafactor":
    tx = optax.adafactor(
      learning_rate=schedule,
      # True: each update is scaled by the parameter's RMS (T5's pretraining recipe), so a table
      # initialised at std 1 moves as fast, relatively, as a kernel at std d**-0.5. False: one
      # absolute step for every weight, which suits zero-initialised adapters.
      multiply_by_parameter_scale=bool(optimizer_cfg.get("multiply_by_parameter_scale", False)),
      decay_rate=float(optimizer_cfg.get("decay_rate", 0.8)),
      clipping_threshold=optimizer_cfg.get("clipping_threshold", 1.0),
      weight_decay_rate=optimizer_cfg.get("weight_decay", None),
      factored=bool(optimizer_cfg.get("factored", True)),
    )
  elif name == "adamw":
    tx = optax.adamw(schedule, weight_decay=float(optimizer_cfg.get("weight_decay", 0.0) or 0.0))
  else:
    raise ValueError(f"optimizer.name must be 'adafactor' or 'adamw', got {name!r}")
  tx = per_layer(tx)
  clip = optimizer_cfg.get("grad_clip_norm", None)
  if clip:
    tx = optax.chain(optax.clip_by_global_norm(float(clip)), tx)
  accum = int(optimizer_cfg.get("grad_accum_steps", 1))
  if accum < 1:
    raise ValueError(f"optimizer.grad_accum_steps must be >= 1, got {accum}")
  if accum > 1:
    tx = optax.MultiSteps(tx, every_k_schedule=accum)
  return tx, schedule
