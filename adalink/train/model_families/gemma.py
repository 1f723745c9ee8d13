"""`model.kind = 'gemma'`: the decoder-only Gemma (1 or 2) over text, run as prefix + continuation.

Config fields: `model.size` (a named size of `adalink.models.gemma_config.SIZES`, e.g. `tiny` or
`gemma2_2b`), `model.dtype`, optionally `model.vocab_size` (a table of another size than the named
one); base weights from `model.checkpoint` (a Hugging Face Gemma / Gemma 2 directory, whose
architecture must be the named size's) or from `model.init_seed`. GLUE and other text-to-text
families feed it unchanged: the task input is the prefix, the target words the continuation, and
the loss covers the continuation only.
"""

from __future__ import annotations

from typing import Any, Dict

import jax
import numpy as np

from adalink import config_fields as cf
from adalink.models import gemma, gemma_config
from adalink.train.model_families import base


def make_config(config) -> gemma_config.GemmaConfig:
  overrides = {"dtype": cf.require(config, "model.dtype")}
  vocab_size = cf.get(config, "model.vocab_size")
  if vocab_size is not None:
    overrides["vocab_size"] = vocab_size
  try:
    return gemma_config.get_config(cf.require(config, "model.size"), **overrides)
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from None


def load_base(config, model_cfg: gemma_config.GemmaConfig, checkpoints) -> Dict[str, Any]:
  checkpoint = checkpoints.get("model.checkpoint")
  if checkpoint is None:
    seed = int(cf.require(config, "model.init_seed"))
    return gemma.init_params(model_cfg, jax.random.PRNGKey(seed))
  from adalink.convert import hf_gemma

  try:
    _, params = hf_gemma.load_hf_gemma(checkpoint, model_cfg)
  except ValueError as e:
    raise ValueError(f"config.model.checkpoint={checkpoint!r}: {e}") from None
  return params


def build_model(model_cfg, spec):
  from adalink.peft import decoder_only, methods  # noqa: F401  (decoder_only: the wrapper)

  return methods.build_model(model_cfg, spec)


def activation_bytes(c: gemma_config.GemmaConfig, batch: int, inputs: int, targets: int, ways: int):
  """Activations one training step keeps per device (no rematerialisation), as
  `adalink.train.model_families.t5.activation_bytes` counts them for T5, for one stack over
  inputs + targets tokens: the residual stream and the norms' outputs (two more in Gemma 2),
  rotated q/k/v and the attention output, the GeGLU's three d_ff-wide tensors, and the scores and
  probabilities over every key; then the continuation's logits and softmax in float32."""
  act = np.dtype(c.jnp_dtype).itemsize
  tokens = inputs + targets
  norms = 6 if c.version == 2 else 4
  wide = ((2 * c.num_heads + 2 * c.num_kv_heads) * c.head_dim + 3 * c.d_ff) / ways
  per_token = norms * c.d_model + wide + 2 * c.num_heads * tokens / ways
  logits = batch * targets * 2 * c.vocab_size / ways * 4
  return int(batch * tokens * per_token * c.num_layers * act + logits)


FAMILY = base.register(
  base.ModelFamily(
    name="gemma",
    make_config=make_config,
    load_base=load_base,
    build_model=build_model,
    text_config=lambda cfg: cfg,
    input_streams=("text",),
    activation_bytes=activation_bytes,
  )
)
