"""`model.kind = 'paligemma'`: PaliGemma / PaliGemma 2, SigLIP image tokens and a prompt read in
full by a Gemma decoder that writes the answer.

Config fields: `model.size` (the Gemma decoder's named size), `model.vit_size` (the SigLIP
tower's), `model.image_size` (0: the named ViT's own), `model.dtype`, optionally
`model.vocab_size`; base weights from `model.checkpoint` (a Hugging Face PaliGemma directory,
whose architecture must be the named sizes', or a big_vision `.npz`) or from `model.init_seed`.
"""

from __future__ import annotations

from typing import Any, Dict

import jax

from adalink import config_fields as cf
from adalink.models import paligemma
from adalink.train.model_families import base
from adalink.train.model_families import gemma as gemma_family


def make_config(config) -> paligemma.PaliGemmaConfig:
  text_overrides = {"dtype": cf.require(config, "model.dtype")}
  vocab_size = cf.get(config, "model.vocab_size")
  if vocab_size is not None:
    text_overrides["vocab_size"] = vocab_size
  try:
    return paligemma.get_config(
      cf.require(config, "model.size"),
      cf.require(config, "model.vit_size"),
      image_size=cf.require(config, "model.image_size") or None,
      **text_overrides,
    )
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from None


def load_base(config, model_cfg: paligemma.PaliGemmaConfig, checkpoints) -> Dict[str, Any]:
  checkpoint = checkpoints.get("model.checkpoint")
  if checkpoint is None:
    seed = int(cf.require(config, "model.init_seed"))
    return paligemma.init_params(model_cfg, jax.random.PRNGKey(seed))
  from adalink.convert import big_vision_paligemma, hf_paligemma

  try:
    if checkpoint.endswith(".npz"):
      return big_vision_paligemma.load_big_vision_paligemma(checkpoint, model_cfg)
    _, params = hf_paligemma.load_hf_paligemma(checkpoint, model_cfg)
  except ValueError as e:
    raise ValueError(f"config.model.checkpoint={checkpoint!r}: {e}") from None
  return params


def build_model(model_cfg, spec):
  from adalink.peft import decoder_only, methods  # noqa: F401  (decoder_only: the wrapper)

  return methods.build_model(model_cfg, spec)


def activation_bytes(c: paligemma.PaliGemmaConfig, batch, inputs, targets, ways) -> int:
  """The decoder's activations over [image tokens; prompt; answer] (the frozen SigLIP tower keeps
  none for the backward pass)."""
  return gemma_family.activation_bytes(c.text, batch, c.num_image_tokens + inputs, targets, ways)


FAMILY = base.register(
  base.ModelFamily(
    name="paligemma",
    make_config=make_config,
    load_base=load_base,
    build_model=build_model,
    text_config=lambda cfg: cfg.text,
    input_streams=("image", "text"),
    image_size=lambda cfg: cfg.vision.image_size,
    activation_bytes=activation_bytes,
  )
)
