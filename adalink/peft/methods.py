"""One entry point from a method config to a model and what trains in it.

`method.name` picks full fine-tuning (`ft`), `lora`, prompt tuning (`pt`), `adalink`, or
`placement` (low-rank adapters on edges of the encoder's node graph, `method.edges`; see
`adalink.peft.placement`, where AdaLink is the edge (0, 0)). The returned `PeftT5` wraps the
frozen T5 without renaming its parameters (the base keeps the checkpoint's tree in the `params`
collection) and puts every adapter weight in the `adapters` collection. What trains is then a
choice of collection: `params` for FT, `adapters` for the rest, so frozen weights get no gradient
and no optimiser state, and adapters save and load alone.

Every config error is raised by `spec_from_config` before anything is traced or compiled, and
names the `method.<field>` and the value.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn
from flax import traverse_util

from adalink.models import layers, t5
from adalink.peft import lora as lora_lib
from adalink.peft import prompt as prompt_lib
from adalink.peft import placement as placement_lib
from adalink.peft.adalink import AdaLink

METHODS = ("ft", "lora", "pt", "adalink", "placement")
TEXT_STREAMS = ("text",)
# Sub-trees that stay frozen even under full fine-tuning (the image tower of a PaLI-style model).
FROZEN_IN_FT = ("vit",)


@dataclasses.dataclass(frozen=True)
class MethodSpec:
  """A validated method configuration (see `spec_from_config` for the config fields)."""

  name: str
  rank: int = 0
  # AdaLink
  streams: Tuple[str, ...] = ("text",)
  num_tasks: int = 1  # > 1: one adapter per task, chosen per example by task_id
  unified: bool = False  # one adapter over all streams (the paper's Table 3 baseline)
  activation: str = "linear"
  dropout_rate: float = 0.1
  # LoRA
  targets: Tuple[str, ...] = lora_lib.ALL_TARGETS
  alpha: float = 0.0
  lora_decoder: bool = False
  # Prompt tuning
  num_prompts: int = 64
  reparam_hidden: int = 0
  prompt_init: str = "vocab"
  # Placement: validated edges (placement_lib.Edge: source node, target node, kind)
  edges: Tuple[placement_lib.Edge, ...] = ()

  @property
  def trainable_collection(self) -> str:
    return "params" if self.name == "ft" else layers.ADAPTERS

  @property
  def lora_spec(self) -> Optional[layers.LoraSpec]:
    if self.name != "lora":
      return None
    return layers.LoraSpec(self.rank, self.alpha, self.targets, self.dropout_rate)


_FIELDS = {
  "ft": (),
  "adalink": ("rank", "streams", "num_tasks", "per_task", "unified", "activation", "dropout_rate"),
  "lora": ("rank", "targets", "alpha", "lora_decoder", "dropout_rate"),
  "pt": ("num_prompts", "reparam_hidden", "prompt_init", "dropout_rate"),
  "placement": ("rank", "edges", "activation", "dropout_rate"),
}


def spec_from_config(
  method_cfg: Mapping[str, Any],
  d_model: int,
  available_streams: Tuple[str, ...] = TEXT_STREAMS,
  num_tasks: int = 1,
  num_encoder_layers: Optional[int] = None,
) -> MethodSpec:
  """Validates `config.method` against the model and returns a `MethodSpec`.

  `num_tasks` is the number of tasks in the data mixture; with `method.per_task` AdaLink gets one
  adapter per task. Fields that do not belong to the chosen method are refused, so a typo such
  as `method.rnak` cannot silently fall back to a default. `num_encoder_layers`, when given, lets
  `method.edges` be range-checked here; otherwise `build_model` checks them against the config.
  """
  cfg = dict(method_cfg.to_dict() if hasattr(method_cfg, "to_dict") else method_cfg)
  name = cfg.pop("name", None)
  if name not in METHODS:
    raise ValueError(f"method.name: unknown method {name!r}; known: {list(METHODS)}")
  allowed = set(_FIELDS[name])
  unknown = sorted(k for k in cfg if k not in allowed)
  if unknown:
    raise ValueError(
      f"method.{unknown[0]}: not a field of method {name!r} "
      f"(its fields: {sorted(allowed) or 'none'})"
    )

  def rank_field():
    r = cfg.get("rank")
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0 or r > d_model:
      raise ValueError(f"method.rank must be an integer in [1, d_model={d_model}], got {r!r}")
    return r

  def dropout_field(default):
    p = cfg.get("dropout_rate", default)
    if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
      raise ValueError(f"method.dropout_rate must be in [0, 1), got {p!r}")
    return float(p)

  def activation_field():
    activation = cfg.get("activation", "linear")
    try:
      layers.activation_fn(activation)
    except ValueError as e:
      raise ValueError(f"method.activation: {e}") from None
    return activation

  if name == "ft":
    return MethodSpec(name="ft")

  if name == "adalink":
    rank = rank_field()
    streams = tuple(cfg.get("streams", ("text",)))
    if not streams:
      raise ValueError("method.streams is empty: name at least one input stream to adapt")
    for s in streams:
      if s not in available_streams:
        raise ValueError(
          f"method.streams: unknown stream {s!r}; this model has {list(available_streams)}"
        )
    per_task = bool(cfg.get("per_task", False))
    tasks = int(cfg.get("num_tasks", num_tasks if per_task else 1))
    if per_task and tasks < 2:
      raise ValueError(f"method.per_task needs a mixture of >= 2 tasks, got num_tasks={tasks}")
    activation = cfg.get("activation", "linear")
    try:
      layers.activation_fn(activation)
    except ValueError as e:
      raise ValueError(f"method.activation: {e}") from None
    unified = bool(cfg.get("unified", False))
    return MethodSpec(
      name="adalink",
      rank=rank,
      streams=streams,
      num_tasks=tasks if per_task else 1,
      unified=unified,
      activation=activation,
      dropout_rate=dropout_field(0.1),
    )

  if name == "placement":
    rank = rank_field()
    if "edges" not in cfg:
      raise ValueError(
        "method.edges is missing: list the adapter edges (source node, target "
        "node[, kind]), e.g. [(0, 0, 'sequential')] for AdaLink's placement"
      )
    edges = placement_lib.parse_edges(cfg["edges"], num_encoder_layers, field="method.edges")
    return MethodSpec(
      name="placement",
      rank=rank,
      edges=edges,
      activation=activation_field(),
      dropout_rate=dropout_field(0.1),
    )

  if name == "lora":
    rank = rank_field()
    targets = tuple(cfg.get("targets", lora_lib.ALL_TARGETS))
    if not targets:
      raise ValueError("method.targets is empty: name the projections LoRA should adapt")
    for tgt in targets:
      if tgt not in lora_lib.ALL_TARGETS:
        raise ValueError(
          f"method.targets: unknown target {tgt!r}; known: {list(lora_lib.ALL_TARGETS)}"
        )
    alpha = cfg.get("alpha", None)
    alpha = float(rank if alpha is None else alpha)
    if alpha <= 0:
      raise ValueError(f"method.alpha must be > 0, got {alpha!r}")
    return MethodSpec(
      name="lora",
      rank=rank,
      targets=targets,
      alpha=alpha,
      lora_decoder=bool(cfg.get("lora_decoder", False)),
      dropout_rate=dropout_field(0.0),
    )

  n = cfg.get("num_prompts", 64)
  if not isinstance(n, int) or n <= 0:
    raise ValueError(f"method.num_prompts must be a positive integer, got {n!r}")
  hidden = cfg.get("reparam_hidden", 0)
  if not isinstance(hidden, int) or hidden < 0:
    raise ValueError(f"method.reparam_hidden must be an integer >= 0, got {hidden!r}")
  init = cfg.get("prompt_init", "vocab")
  if init not in prompt_lib.PROMPT_INITS:
    raise ValueError(
      f"method.prompt_init must be one of {list(prompt_lib.PROMPT_INITS)}, got {init!r}"
    )
  return MethodSpec(
    name="pt",
    num_prompts=n,
    reparam_hidden=hidden,
    prompt_init=init,
    dropout_rate=dropout_field(0.05),
  )


class InputAdapters(nn.Module):
  """The AdaLink modules of a model: one per stream, or one `unified` module for all streams."""

  spec: MethodSpec
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, streams: Dict[str, jax.Array], task_id=None, deterministic: bool = True):
    s = self.spec
    make = lambda name: AdaLink(
      s.rank, s.num_tasks, s.activation, s.dropout_rate, self.dtype, name=name
    )
    if s.unified:
      shared = make("unified")
      return {k: shared(v, task_id, deterministic) for k, v in streams.items()}
    out = dict(streams)
    for name in s.streams:
      if name in streams:
        out[name] = make(name)(streams[name], task_id, deterministic)
    return out


class PeftT5(nn.Module):
  """T5 with one method's adapters; the same interface as `T5` plus an optional `task_id`."""

  config: t5.T5Config
  spec: MethodSpec

  def setup(self):
    s = self.spec
    self.base = t5.T5(self.config, lora=s.lora_spec, lora_decoder=s.lora_decoder)
    # The base's parameters keep their checkpoint paths (no 'base/' prefix).
    nn.share_scope(self, self.base)
    if s.name == "adalink":
      self.adalink = InputAdapters(s, self.config.jnp_dtype)
    if s.name == "pt":
      self.prompt = prompt_lib.PromptTuning(
        s.num_prompts, s.reparam_hidden, s.prompt_init, s.dropout_rate, dtype=self.config.jnp_dtype
      )
    if s.name == "placement":
      placement_lib.check_edges_in_range(s.edges, self.config.num_encoder_layers)
      self.placement = placement_lib.EdgeAdapters(
        len(s.edges),
        self.config.d_model,
        s.rank,
        s.activation,
        s.dropout_rate,
        self.config.jnp_dtype,
      )

  def embed_inputs(self, encoder_input_tokens, task_id=None, deterministic: bool = True):
    """Input embeddings and mask as the encoder will see them, after the method's transform."""
    emb = self.base.embed(encoder_input_tokens)
    mask = encoder_input_tokens != self.config.pad_token_id
    if self.spec.name == "adalink":
      emb = self.adalink({"text": emb}, task_id, deterministic)["text"]
    elif self.spec.name == "pt":
      emb, mask = self.prompt(emb, mask, self.base.token_embedder.embedding, deterministic)
    return emb, mask

  def encode_embedded(
    self, emb, mask, segment_ids=None, positions=None, deterministic: bool = True
  ):
    """The encoder on (method-transformed) embeddings; `placement` adds its edge adapters here
    (its edges from the spec, or from a `placement_routing` variable when one is given)."""
    if self.spec.name == "placement":
      routing = None
      if self.has_variable(placement_lib.ROUTING, "edges"):
        routing = self.get_variable(placement_lib.ROUTING, "edges")
      return placement_lib.encode(
        self.base,
        self.placement,
        self.spec.edges,
        emb,
        mask,
        segment_ids,
        positions,
        deterministic,
        routing,
      )
    return self.base.encode_embedded(emb, mask, segment_ids, positions, deterministic)

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
    if self.spec.name == "pt" and encoder_segment_ids is not None:
      raise ValueError("prompt tuning does not support packed inputs: set data.pack = False")
    if self.spec.num_tasks > 1 and encoder_segment_ids is not None:
      raise ValueError("per-task AdaLink needs one task per row: set data.pack = False")
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


def build_model(config: t5.T5Config, spec: MethodSpec) -> PeftT5:
  if spec.name == "placement":
    # The spec may have been made without the layer count; check the nodes before any tracing.
    placement_lib.check_edges_in_range(spec.edges, config.num_encoder_layers)
  return PeftT5(config, spec)


def _dummy_inputs(spec: MethodSpec, batch: int = 1):
  kw = dict(
    encoder_input_tokens=jnp.ones((batch, 4), jnp.int32),
    decoder_input_tokens=jnp.ones((batch, 3), jnp.int32),
  )
  if spec.num_tasks > 1:
    kw["task_id"] = jnp.zeros((batch,), jnp.int32)
  return kw


def init_variables(
  model: PeftT5, rng: jax.Array, base_params: Optional[Dict[str, Any]] = None, boxed: bool = False
) -> Dict[str, Any]:
  """Variables for the model: random base and adapters, or adapters around given base params.

  With `base_params` the adapters are initialised while the loaded base is in place, so inits
  that read the base (prompt rows sampled from the vocabulary table) see the real weights.
  """
  inputs = model.example_inputs() if hasattr(model, "example_inputs") else _dummy_inputs(model.spec)
  if base_params is None:
    variables = model.init(rng, **inputs)
  else:
    _, variables = model.apply(
      {"params": base_params}, **inputs, mutable=[layers.ADAPTERS], rngs={"params": rng}
    )
    variables = {"params": base_params, **variables}
  variables = dict(variables)
  return variables if boxed else nn.unbox(variables)


def abstract_variables(model: PeftT5) -> Dict[str, Any]:
  """Shapes, dtypes and logical axes of every variable, allocating nothing (for 11B sizes too)."""
  inputs = model.example_inputs() if hasattr(model, "example_inputs") else _dummy_inputs(model.spec)
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), **inputs))


def is_trainable(spec: MethodSpec, collection: str, path: Tuple[str, ...]) -> bool:
  if collection != spec.trainable_collection:
    return False
  return not (spec.name == "ft" and path and path[0] in FROZEN_IN_FT)


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
  """Trainable parameter counts from shapes: `trainable`, and for PT the `prompt` itself and the
  training-only `reparam` network apart (the paper counts only n x d)."""
  trainable, _ = split_variables(spec, nn.unbox(abstract))
  total = count_params(trainable)
  out = {"trainable": total}
  if spec.name == "pt":
    flat = traverse_util.flatten_dict(trainable.get(layers.ADAPTERS, {}))
    out["prompt"] = int(sum(v.size for k, v in flat.items() if k[-1] == "prompt"))
    out["reparam"] = total - out["prompt"]
  return out
