"""`model.kind = 'pali'`: a PaLI-style image+text model, a frozen ViT's patch tokens projected to
the width of a T5 and joined to its text embeddings.

Config fields: those of the `t5` family for the text model, plus `model.vit_size`, optionally
`model.image_size` (another resolution than the named ViT's) and `model.vit_checkpoint` (Hugging
Face ViT/SigLIP directory or big_vision `.npz`; empty: random from `model.init_seed`).
"""

from __future__ import annotations

from typing import Any, Dict

import jax

from adalink import config_fields as cf
from adalink.train.model_families import base
from adalink.train.model_families import t5 as t5_family


def make_config(config):
  from adalink.models import pali, vit

  text = t5_family.make_config(config)
  vit_overrides = {"dtype": text.dtype}
  if cf.require(config, "model.image_size"):  # 0 or empty: the named ViT's own size
    vit_overrides["image_size"] = int(config.model.image_size)
  try:
    vision = vit.get_config(cf.require(config, "model.vit_size"), **vit_overrides)
  except ValueError as e:
    raise ValueError(f"config.model.vit_size: {e}") from None
  return pali.PaLIConfig(text, vision)


def load_base(config, model_cfg, checkpoints) -> Dict[str, Any]:
  """Random parts (the projection, and any tower without a checkpoint) from `model.init_seed`;
  the T5 from `model.checkpoint` and the ViT from `model.vit_checkpoint` when given."""
  from adalink.models import pali

  seed = int(cf.require(config, "model.init_seed"))
  params = dict(pali.init_params(model_cfg, jax.random.PRNGKey(seed)))
  if checkpoints.get("model.checkpoint") is not None:
    params.update(
      t5_family.load_text_params(config, model_cfg.text, checkpoints["model.checkpoint"])
    )
  vit_checkpoint = checkpoints.get("model.vit_checkpoint")
  if vit_checkpoint is not None:
    from adalink.convert import big_vision_vit, hf_vit

    if vit_checkpoint.endswith(".npz"):
      params["vit"] = big_vision_vit.load_big_vision_npz(vit_checkpoint, model_cfg.vision)
    else:
      _, params["vit"] = hf_vit.load_hf_vit(vit_checkpoint, model_cfg.vision)
  return params


def build_model(model_cfg, spec):
  from adalink.peft import methods, multimodal  # noqa: F401  (multimodal: the PaLI wrapper)

  return methods.build_model(model_cfg, spec)


FAMILY = base.register(
  base.ModelFamily(
    name="pali",
    make_config=make_config,
    load_base=load_base,
    build_model=build_model,
    text_config=lambda cfg: cfg.text,
    # The T5's activations over the text inputs (the image tokens it also reads are not counted).
    activation_bytes=lambda c, *shape: t5_family.activation_bytes(c.text, *shape),
    input_streams=("image", "text"),
    image_size=lambda cfg: cfg.vision.image_size,
    extra_checkpoints=("model.vit_checkpoint",),
  )
)
