"""Full fine-tuning (`method.name = 'ft'`): every base weight trains, except frozen towers.

FT has no fields and no hooks; it only moves what trains from the `adapters` collection to the
base's `params`. Sub-trees named in `FROZEN_IN_FT` (the image tower of a PaLI-style model) stay
frozen even so: the ViT's output carries no gradient, and keeping its weights out of the trainable
split keeps them out of the optimiser too.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

from adalink.peft.base import MethodSpec, register_method

# Top-level parameter sub-trees that stay frozen under full fine-tuning.
FROZEN_IN_FT = ("vit",)


@register_method
@dataclasses.dataclass(frozen=True)
class FullFineTuning(MethodSpec):
  name: str = "ft"

  trainable_collection = "params"

  def is_trainable(self, collection: str, path: Tuple[str, ...]) -> bool:
    return collection == self.trainable_collection and not (path and path[0] in FROZEN_IN_FT)
