"""Model families by `config.model.kind`: how a run gets its model config, its frozen base weights
and its PEFT wrapper.

A family is a `ModelFamily` registered in `FAMILIES` under its name; the built-in ones are `t5`
(text only), `gemma` (decoder-only), `pali` (a ViT's image tokens joined to T5's text) and
`paligemma` (SigLIP image tokens and a prompt read by Gemma), one module each. The trainer only
calls the family's functions; a new family (another decoder-only model, another image+text model)
is one module that builds a `ModelFamily` and registers it.
"""

from adalink.train.model_families.base import FAMILIES, ModelFamily, register

# The built-in families register themselves on import (JAX only, no TensorFlow).
from adalink.train.model_families import gemma, pali, paligemma, t5  # noqa: F401

__all__ = ["FAMILIES", "ModelFamily", "register"]
