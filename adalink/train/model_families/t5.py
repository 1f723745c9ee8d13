"""`model.kind = 't5'`: an encoder-decoder T5 (v1.1 / FLAN-T5 / original) over text.

Config fields: `model.size` (a named size), `model.dropout_rate`, `model.dtype`, optionally
`model.vocab_size` (a table of another size than the named one), `model.scan_layers` (run the
layers under `nn.scan`: compile time independent of depth) and `model.remat` (none, full, dots,
dots_no_batch); base weights from `model.checkpoint` (a Hugging Face T5 directory or a T5X
checkpoint, read unrolled and stacked for a scanned model) or from `model.init_seed`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import jax
import numpy as np

from adalink import config_fields as cf
from adalink.models import layer_stack, t5
from adalink.train.model_families import base


def make_config(config) -> t5.T5Config:
  size = cf.require(config, "model.size")
  overrides = {k: cf.require(config, f"model.{k}") for k in ("dropout_rate", "dtype")}
  # A table of another size than the named model's is rare: configs set it only when they need it.
  vocab_size = cf.get(config, "model.vocab_size")
  if vocab_size is not None:
    overrides["vocab_size"] = vocab_size
  overrides["scan_layers"] = bool(cf.get(config, "model.scan_layers", False))
  overrides["remat"] = cf.get(config, "model.remat", "none")
  try:
    return t5.get_config(size, **overrides)
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from None


def load_text_params(config, text_cfg: t5.T5Config, checkpoint: Optional[str]) -> Dict[str, Any]:
  """T5 weights from `checkpoint` (whose architecture must be `text_cfg`'s), or random from
  `model.init_seed` when there is none."""
  if checkpoint is None:
    # Drawn unrolled and stacked when scanned: a seed is the same base in either layout.
    seed = int(cf.require(config, "model.init_seed"))
    params = t5.init_params(
      text_cfg.replace(scan_layers=False, remat="none"), jax.random.PRNGKey(seed)
    )
    return layer_stack.stack_layers(params) if text_cfg.scan_layers else params
  from adalink import convert

  loaded_cfg, params = convert.load_checkpoint(checkpoint, config=text_cfg)

  def arch(c):
    runtime = ("dropout_rate", "dtype", "scan_layers", "remat")
    return {k: v for k, v in c.to_dict().items() if k not in runtime}

  if arch(loaded_cfg) != arch(text_cfg):
    diff = {
      k: (arch(text_cfg)[k], v) for k, v in arch(loaded_cfg).items() if arch(text_cfg).get(k) != v
    }
    raise ValueError(
      f"config.model.size={cf.get(config, 'model.size')!r} does not match the checkpoint "
      f"{checkpoint}: (config, checkpoint) differ in {diff}"
    )
  return layer_stack.stack_layers(params) if text_cfg.scan_layers else params


def load_base(config, model_cfg: t5.T5Config, checkpoints) -> Dict[str, Any]:
  return load_text_params(config, model_cfg, checkpoints.get("model.checkpoint"))


def activation_bytes(c: t5.T5Config, batch: int, inputs: int, targets: int, model_ways: int) -> int:
  """Estimate of the activations one training step keeps for the backward pass, per device, for
  `batch` rows on that device, under the config's remat policy (`c.remat`).

  Per encoder layer and token, without remat: the residual stream, two layer-norm outputs, q/k/v
  and the attention output (4 x heads x d_kv), the MLP's input projections and hidden state (3 x
  d_ff for a gated MLP, 2 x d_ff otherwise) and its output; plus the attention probabilities and
  their pre-softmax scores (2 x heads x keys). A decoder layer adds cross-attention (its own
  q/k/v/out and probabilities over the inputs). Then the logits and their softmax (2 x vocab per
  target token). Head- and MLP-wide tensors are split over the mesh's model axis. Counted in the
  activation dtype; the logits in float32.

  Remat keeps less per layer and adds back one layer's intermediates, live while that layer is
  recomputed: "full" (and "dots_no_batch", since every activation matmul has a batch dimension)
  keeps each layer's input only; "dots" keeps the matmul outputs (q/k/v/out, the MLP's
  projections and output, the attention scores) and drops norms, hidden activations and
  probabilities.
  """
  act = np.dtype(c.jnp_dtype).itemsize
  hd = c.num_heads * c.d_kv
  gated = len(c.mlp_activations) == 2
  mlp = (3 if gated else 2) * c.d_ff
  wide = (4 * hd + mlp) / model_ways
  enc_scores = c.num_heads * inputs / model_ways
  dec_scores = c.num_heads * (targets + inputs) / model_ways
  enc_token = 4 * c.d_model + wide + 2 * enc_scores
  dec_token = 6 * c.d_model + wide + 4 * hd / model_ways + 2 * dec_scores
  if c.remat == "none":
    kept_enc, kept_dec, live = enc_token, dec_token, 0.0
  else:
    live = max(inputs * enc_token, targets * dec_token)  # one layer being recomputed
    if c.remat == "dots":
      dots = (4 * hd + (2 if gated else 1) * c.d_ff) / model_ways
      kept_enc = c.d_model + dots + c.d_model + enc_scores
      kept_dec = c.d_model + dots + 4 * hd / model_ways + 2 * c.d_model + dec_scores
    else:
      kept_enc = kept_dec = c.d_model
  elements = batch * (
    inputs * kept_enc * c.num_encoder_layers + targets * kept_dec * c.num_decoder_layers + live
  )
  logits = batch * targets * 2 * c.vocab_size / model_ways * 4
  return int(elements * act + logits)


def build_model(model_cfg, spec):
  from adalink.peft import methods

  return methods.build_model(model_cfg, spec)


FAMILY = base.register(
  base.ModelFamily(
    name="t5",
    make_config=make_config,
    load_base=load_base,
    build_model=build_model,
    text_config=lambda cfg: cfg,
    activation_bytes=activation_bytes,
    input_streams=("text",),
  )
)
