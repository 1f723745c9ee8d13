"""Data families by `config.data.kind`: glue, captioning, vqa, pretrain, batch_files (one module
each).

`FAMILIES.get(kind)` gives the family; `base` says what a family provides. Importing this package
registers the built-in families without importing TensorFlow (they import seqio when they build).
A new family is a module that subclasses `base.DataFamily` (or `base.SeqioFamily`) and calls
`base.register(...)`; it needs no change here or in the trainer.
"""

from adalink.data.families import base
from adalink.data.families import batch_files, captioning, glue, pretrain, vqa  # noqa: F401  (register)
from adalink.data.families.base import FAMILIES, Data, DataFamily, ModelFacts, SeqioFamily

__all__ = ["FAMILIES", "Data", "DataFamily", "ModelFacts", "SeqioFamily", "base"]
