"""One entry point from a method config to a model and what trains in it.

`method.name` picks a registered method (`METHODS`): full fine-tuning (`ft`), `lora`, prompt
tuning (`pt`), `adalink`, or `placement` (low-rank adapters on edges of the encoder's node graph,
`method.edges`; see `adalink.peft.placement`, where AdaLink is the edge (0, 0)). Each lives in its
own module, owns its config fields and reaches the model only through the hooks described in
`adalink.peft.base`; adding a method is one module that registers a `MethodSpec` subclass.

The model wrappers (`PeftT5` here, `adalink.peft.multimodal.PeftPaLI`) wrap the frozen base
without renaming its parameters (the base keeps the checkpoint's tree in the `params` collection)
and put every adapter weight in the `adapters` collection. What trains is then a choice of
collection: `params` for FT, `adapters` for the rest, so frozen weights get no gradient and no
optimiser state, and adapters save and load alone.

Every config error is raised by `spec_from_config` (and `check_supported`, for what depends on
the model) before anything is traced or compiled, and names the `method.<field>` and the value.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn
from flax import traverse_util

from adalink.models import layer_stack, layers, t5

# The built-in methods register themselves on import; the PaLI and Gemma wrappers register their
# config types.
from adalink.peft import decoder_only  # noqa: F401
from adalink.peft import lora as lora_lib  # noqa: F401
from adalink.peft import multimodal  # noqa: F401
from adalink.peft import placement as placement_lib  # noqa: F401
from adalink.peft import prompt as prompt_lib  # noqa: F401
from adalink.peft.adalink import AdaLinkMethod, InputAdapters  # noqa: F401
from adalink.peft.base import (  # noqa: F401  (the public surface of the method layer)
  ENCODER_NODES,
  METHODS,
  TEXT_STREAMS,
  InputContext,
  MethodSpec,
  ModelInfo,
  SpecContext,
  check_supported,
  model_info,
  register_method,
  register_wrapper,
  supported_methods,
  unregister_method,
  wrapper_for,
)
from adalink.peft.ft import FROZEN_IN_FT  # noqa: F401


def spec_from_config(
  method_cfg: Mapping[str, Any],
  d_model: int,
  available_streams: Tuple[str, ...] = TEXT_STREAMS,
  num_tasks: int = 1,
  num_encoder_layers: Optional[int] = None,
) -> MethodSpec:
  """Validates `config.method` against the model and returns the method's spec.

  `num_tasks` is the number of tasks in the data mixture; with `method.per_task` AdaLink gets one
  adapter per task. Fields that do not belong to the chosen method are refused, so a typo such
  as `method.rnak` cannot silently fall back to a default. `num_encoder_layers`, when given, lets
  `method.edges` be range-checked here; otherwise `build_model` checks them against the config.
  """
  fields = dict(method_cfg.to_dict() if hasattr(method_cfg, "to_dict") else method_cfg)
  name = fields.pop("name", None)
  if not isinstance(name, str) or name not in METHODS:
    raise ValueError(f"method.name: unknown method {name!r}; known: {list(METHODS)}")
  cls = METHODS.get(name)
  allowed = set(cls.config_fields)
  unknown = sorted(k for k in fields if k not in allowed)
  if unknown:
    raise ValueError(
      f"method.{unknown[0]}: not a field of method {name!r} "
      f"(its fields: {sorted(allowed) or 'none'})"
    )
  ctx = SpecContext(d_model, tuple(available_streams), num_tasks, num_encoder_layers)
  return cls.from_config(fields, ctx)


class PeftT5(nn.Module):
  """T5 with one method's adapters; the same interface as `T5` plus an optional `task_id`."""

  config: t5.T5Config
  spec: MethodSpec

  @classmethod
  def model_info(cls, config: t5.T5Config) -> ModelInfo:
    return ModelInfo(
      kind="t5",
      description="the text T5 (model.kind='t5')",
      streams=TEXT_STREAMS,
      d_model=config.d_model,
      num_encoder_layers=config.num_encoder_layers,
      dtype=config.jnp_dtype,
      features=frozenset({ENCODER_NODES}),
    )

  def setup(self):
    s = self.spec
    check_supported(s, self.model_info(self.config))
    self.base = t5.T5(self.config, lora=s.lora_spec, lora_decoder=s.lora_decoder)
    # The base's parameters keep their checkpoint paths (no 'base/' prefix).
    nn.share_scope(self, self.base)
    # The method's own module (None for FT and LoRA), named by the method: its weights' path.
    self.adapter = s.make_module(self.model_info(self.config))

  def example_inputs(self, batch: int = 1) -> Dict[str, Any]:
    """Inputs that touch every variable, for init and shape inference (needs no binding)."""
    kw = dict(
      encoder_input_tokens=jnp.ones((batch, 4), jnp.int32),
      decoder_input_tokens=jnp.ones((batch, 3), jnp.int32),
    )
    if self.spec.num_tasks > 1:
      kw["task_id"] = jnp.zeros((batch,), jnp.int32)
    return kw

  def embed_inputs(self, encoder_input_tokens, task_id=None, deterministic: bool = True):
    """Input embeddings and mask as the encoder will see them, after the method's hook."""
    streams = {"text": self.base.embed(encoder_input_tokens)}
    masks = {"text": encoder_input_tokens != self.config.pad_token_id}
    ctx = InputContext(task_id, deterministic, lambda: self.base.token_embedder.embedding)
    streams, masks = self.spec.embed(self.adapter, streams, masks, ctx)
    return streams["text"], masks["text"]

  def encode_embedded(
    self, emb, mask, segment_ids=None, positions=None, deterministic: bool = True
  ):
    """The encoder on (method-transformed) embeddings, through the method's encoder hook (the
    node hook is how placement adds its edge adapters)."""
    run = lambda node_hook: self.base.encode_embedded(
      emb, mask, segment_ids, positions, deterministic, node_hook=node_hook
    )
    return self.spec.encode(self.adapter, run, self.model_info(self.config), deterministic)

  def encode_for_decoder(self, encoder_input_tokens, task_id=None, **unused):
    emb, mask = self.embed_inputs(encoder_input_tokens, task_id)
    return self.encode_embedded(emb, mask), mask

  def decode(
    self,
    encoded,
    encoder_mask,
    decoder_input_tokens,
    decoder_target_tokens=None,
    encoder_segment_ids=None,
    decoder_segment_ids=None,
    decoder_positions=None,
    deterministic: bool = True,
    decode: bool = False,
  ):
    return self.base.decode(
      encoded,
      encoder_mask,
      decoder_input_tokens,
      decoder_target_tokens,
      encoder_segment_ids,
      decoder_segment_ids,
      decoder_positions,
      deterministic,
      decode,
    )

  def __call__(
    self,
    encoder_input_tokens,
    decoder_input_tokens,
    decoder_target_tokens=None,
    task_id=None,
    encoder_segment_ids=None,
    decoder_segment_ids=None,
    encoder_positions=None,
    decoder_positions=None,
    deterministic: bool = True,
  ):
    self.spec.check_inputs(packed=encoder_segment_ids is not None)
    emb, mask = self.embed_inputs(encoder_input_tokens, task_id, deterministic)
    encoded = self.encode_embedded(emb, mask, encoder_segment_ids, encoder_positions, deterministic)
    return self.decode(
      encoded,
      mask,
      decoder_input_tokens,
      decoder_target_tokens,
      encoder_segment_ids,
      decoder_segment_ids,
      decoder_positions,
      deterministic,
    )


register_wrapper(t5.T5Config, PeftT5)


def build_model(config, spec: MethodSpec) -> nn.Module:
  """The PEFT wrapper of `config`'s model family (`PeftT5` for a T5Config, `PeftPaLI` for a
  PaLIConfig) with `spec`'s method, refused here, before any tracing, if it does not fit."""
  check_supported(spec, config)
  return wrapper_for(config)(config, spec)


def init_variables(
  model: nn.Module,
  rng: jax.Array,
  base_params: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
  """Variables for the model: random base and adapters, or adapters around given base params.

  With `base_params` the adapters are initialised while the loaded base is in place, so inits
  that read the base (prompt rows sampled from the vocabulary table) see the real weights.
  """
  unrolled = _unrolled_twin(model)
  if unrolled is not None:
    # Scanned layers: initialise the unrolled twin and stack its variables, so a seed gives the
    # same weights (base and adapters) whichever layout the run uses.
    if base_params is not None:
      base_params = layer_stack.unstack_layers(base_params)
    return layer_stack.stack_layers(init_variables(unrolled, rng, base_params))
  inputs = model.example_inputs()
  # Jitted: one compilation instead of one per operation of the example forward pass.
  if base_params is None:
    variables = jax.jit(model.init)(rng, **inputs)
  else:
    adapters_around = lambda params, rng: model.apply(
      {"params": params}, **inputs, mutable=[layers.ADAPTERS], rngs={"params": rng}
    )[1]
    variables = jax.jit(adapters_around)(base_params, rng)
    variables = {"params": base_params, **variables}
  return nn.unbox(dict(variables))


def _unrolled_twin(model: nn.Module) -> Optional[nn.Module]:
  """The same wrapper over unrolled layers when `model`'s T5 (itself, or a PaLI's text model)
  scans them; None otherwise."""
  config = model.config
  text = config if isinstance(config, t5.T5Config) else getattr(config, "text", None)
  if not isinstance(text, t5.T5Config) or not text.scan_layers:
    return None
  plain = text.replace(scan_layers=False, remat="none")
  return model.clone(config=plain if config is text else dataclasses.replace(config, text=plain))


def abstract_variables(model: nn.Module) -> Dict[str, Any]:
  """Shapes, dtypes and logical axes of every variable, allocating nothing (for 11B sizes too)."""
  inputs = model.example_inputs()
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), **inputs))


def is_trainable(spec: MethodSpec, collection: str, path: Tuple[str, ...]) -> bool:
  return spec.is_trainable(collection, tuple(path))


def split_variables(spec: MethodSpec, variables: Mapping[str, Any]):
  """(trainable, frozen): two variable dicts whose leaves partition `variables`."""
  trainable, frozen = {}, {}
  for col, tree in variables.items():
    for path, leaf in traverse_util.flatten_dict(dict(tree)).items():
      target = trainable if is_trainable(spec, col, path) else frozen
      target.setdefault(col, {})[path] = leaf
  unflat = lambda d: {c: traverse_util.unflatten_dict(t) for c, t in d.items()}
  return unflat(trainable), unflat(frozen)


def merge_variables(trainable: Mapping[str, Any], frozen: Mapping[str, Any]) -> Dict[str, Any]:
  """Inverse of `split_variables`."""
  out = {}
  for part in (frozen, trainable):
    for col, tree in part.items():
      flat = traverse_util.flatten_dict(dict(out.get(col, {})))
      flat.update(traverse_util.flatten_dict(dict(tree)))
      out[col] = traverse_util.unflatten_dict(flat)
  return out


def count_params(tree) -> int:
  return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))


def count_trainable(spec: MethodSpec, abstract: Mapping[str, Any]) -> Dict[str, int]:
  """Trainable parameter counts from shapes: `trainable`, plus the method's own (for PT the
  `prompt` itself and the training-only `reparam` network apart: the paper counts only n x d)."""
  trainable, _ = split_variables(spec, nn.unbox(abstract))
  return {"trainable": count_params(trainable), **spec.extra_counts(trainable)}
