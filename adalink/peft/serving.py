"""Serving forms of a trained text model: what to decode with, at what cost.

`serving_form(model, variables, fold)` returns the module and variables a trained `PeftT5` is
best served with:

  * AdaLink with the identity activation, folded (`fold` 'auto' or True): the adapter is applied
    once to every row of the vocabulary table (`adalink.peft.adalink.fold_into_embedding`) and
    the model reads its encoder inputs from the folded tables, stacked [tasks, vocab, d]
    (`FoldedAdaLinkT5`). Each example gathers its rows from its own task's table, so a batch that
    mixes tasks is served at the cost of one embedding lookup, the base model's cost;
  * LoRA, merged: every pair folded into its kernel (`merge_lora`), served by the plain `T5`;
  * everything else (prompt tuning, placement, an AdaLink with a non-linear activation, full
    fine-tuning, or `fold=False`) as trained, by the wrapper itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import layers, t5
from adalink.peft import adalink as adalink_lib
from adalink.peft import lora as lora_lib

Array = jax.Array
FOLDED_TABLES = "folded_encoder_embedding"


class FoldedAdaLinkT5(nn.Module):
  """A frozen T5 whose encoder reads folded AdaLink tables `folded_encoder_embedding`
  [tasks, vocab, d] (in `params`): example b embeds token t as row t of table `task_id[b]`. The
  decoder (and a tied head) keep the shared table. Decoding interface as `T5`'s."""

  config: t5.T5Config
  num_tasks: int = 1

  def setup(self):
    self.base = t5.T5(self.config)
    nn.share_scope(self, self.base)
    c = self.config
    self.tables = self.param(
      FOLDED_TABLES, nn.initializers.zeros, (self.num_tasks, c.vocab_size, c.d_model), jnp.float32
    )

  def embed(self, encoder_input_tokens: Array, task_id: Optional[Array] = None) -> Array:
    tokens = jnp.asarray(encoder_input_tokens, jnp.int32)
    if task_id is None:
      if self.num_tasks > 1:
        raise ValueError(
          f"the folded model holds {self.num_tasks} task tables but the batch has no 'task_id'"
        )
      task_id = jnp.zeros((tokens.shape[0],), jnp.int32)
    task_id = jnp.asarray(task_id, jnp.int32).reshape(-1)
    # One gather over the [tasks, vocab, d] stack: the cost of the base model's lookup.
    return self.tables[task_id[:, None], tokens].astype(self.config.jnp_dtype)

  def encode_for_decoder(self, encoder_input_tokens, task_id=None, **unused):
    mask = encoder_input_tokens != self.config.pad_token_id
    return self.base.encode_embedded(self.embed(encoder_input_tokens, task_id), mask), mask

  def decode(self, encoded, encoder_mask, decoder_input_tokens, **kwargs):
    return self.base.decode(encoded, encoder_mask, decoder_input_tokens, **kwargs)

  def __call__(self, encoder_input_tokens, decoder_input_tokens, task_id=None, **kwargs):
    encoded, mask = self.encode_for_decoder(encoder_input_tokens, task_id)
    return self.decode(encoded, mask, decoder_input_tokens, **kwargs)


@dataclasses.dataclass
class ServingForm:
  """A module and its variables for `adalink.train.decoding.decode`, and what they are."""

  module: nn.Module
  variables: Dict[str, Any]
  form: str  # "adalink folded", "adalink module", "lora merged", "pt module", ...
  num_tasks: int = 1  # > 1: every batch passes `task_id`


def folded_tables(base_params, adapters, activation: str = "linear") -> Array:
  """[tasks, vocab, d]: the text AdaLink (per stream 'text', or 'unified') folded into the
  vocabulary table, one table per task."""
  ad = adapters.get("adalink", {})
  node = ad.get("text", ad.get("unified"))
  if node is None:
    raise KeyError(f"no text AdaLink adapter to fold (found {sorted(ad)})")
  return adalink_lib.fold_into_embedding(
    base_params["token_embedder"]["embedding"], node["down"], node["up"], activation
  )


def can_fold(spec) -> Tuple[bool, str]:
  """(whether folding is exact for `spec`, why not)."""
  if spec.name != "adalink":
    return False, f"method {spec.name!r} has no input-embedding adapter to fold"
  if spec.activation != "linear":
    return False, f"activation {spec.activation!r} is not linear, so the adapter is not a table"
  return True, ""


def serving_form(model: nn.Module, variables, fold: Union[bool, str] = "auto") -> ServingForm:
  """The serving form of a trained `PeftT5` (see the module docstring). `fold=True` refuses a
  method that cannot be folded; 'auto' folds when exact and serves the module otherwise."""
  spec, config = model.spec, model.config
  if not isinstance(config, t5.T5Config):
    raise ValueError(f"serving forms are for text T5 models, got {type(config).__name__}")
  params = nn.unbox(variables["params"])
  adapters = nn.unbox(variables.get(layers.ADAPTERS, {}))
  tasks = int(getattr(spec, "num_tasks", 1))
  foldable, why = can_fold(spec)
  if fold is True and not foldable:
    raise ValueError(f"cannot serve folded: {why}; serve the module instead (--unfolded)")
  if foldable and fold in (True, "auto"):
    tables = folded_tables(params, adapters, spec.activation)
    module = FoldedAdaLinkT5(config, tasks)
    return ServingForm(
      module, {"params": {**params, FOLDED_TABLES: tables}}, "adalink folded", tasks
    )
  if spec.name == "lora" and fold in (True, "auto"):
    merged = lora_lib.merge_lora(params, adapters, spec.rank, spec.alpha)
    return ServingForm(t5.T5(config), {"params": merged}, "lora merged", tasks)
  return ServingForm(model, dict(variables), f"{spec.name} module", tasks)
