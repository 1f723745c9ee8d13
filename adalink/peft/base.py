"""What a PEFT method is, and the seams through which it reaches a model.

A method is a frozen dataclass subclassing `MethodSpec`, registered under its `method.name` with
`register_method` (the built-in ones are `adalink.peft.ft`, `lora`, `prompt`, `adalink` and
`placement`; a test or a user's module registers its own the same way). The class owns:

  * its config fields: `config_fields` names the `method.<field>`s it accepts (any other is refused
    before `from_config` runs) and `from_config` validates them into an instance, raising
    `ValueError("method.<field> ...")` on a bad value;
  * what trains: `trainable_collection` and `is_trainable(collection, path)`;
  * its hooks, which the model wrappers (`PeftT5`, `PeftPaLI`) call at fixed seams and never by
    method name:
      `make_module(model)`           the method's own Flax module (its adapter weights), or None;
                                     its `name` is where the weights live in `adapters`;
      `embed(module, streams, masks, ctx)`
                                     the input-embedding hook: the dict of per-stream embeddings
                                     and masks before the encoder (AdaLink maps them, prompt
                                     tuning inserts soft tokens into the text stream);
      `embed_continuation(module, streams, ctx)`
                                     the same for tokens that continue a sequence in a
                                     decoder-only model (its label words and generated tokens):
                                     per-token maps (AdaLink) apply, insertions do not;
      `encode(module, run_encoder, model, deterministic)`
                                     the encoder hook: `run_encoder(node_hook)` runs the encoder
                                     once with an optional node hook (placement's edge adapters);
      `lora_spec` / `lora_decoder`   a low-rank branch inside the dense layers;
      `check_inputs(packed=...)`     per-batch checks (e.g. packed rows refused);
      `extra_counts(trainable)`      parameter counts beyond the trainable total;
      `requires`, `check_model(model)`
                                     what it needs of a model; see `check_supported`.

A wrapper describes its model with a `ModelInfo` (family, input streams, sizes, features such as
the encoder node hook), registered for its config type with `register_wrapper`.
"""

from __future__ import annotations

import dataclasses
from typing import (
  Any,
  Callable,
  ClassVar,
  Dict,
  FrozenSet,
  Mapping,
  NamedTuple,
  Optional,
  Tuple,
  Type,
)

import jax
import flax.linen as nn

from adalink.models import layers
from adalink.registry import Registry

Array = jax.Array

METHODS: Registry = Registry("method", field="method.name")

# Streams of the text-only model's input-embedding hook.
TEXT_STREAMS = ("text",)

# Model features a method may require (`MethodSpec.requires`), with what they mean for messages.
ENCODER_NODES = "encoder_nodes"
FEATURES = {
  ENCODER_NODES: "the encoder node hook (a node between every two encoder sub-blocks)",
}


class SpecContext(NamedTuple):
  """What `from_config` may validate against: the model's width, its input streams, the number of
  tasks in the data mixture, and the encoder's layer count when known (None otherwise)."""

  d_model: int
  available_streams: Tuple[str, ...] = TEXT_STREAMS
  num_tasks: int = 1
  num_encoder_layers: Optional[int] = None


class ModelInfo(NamedTuple):
  """A model wrapper's description of its model, for `make_module` and `check_supported`."""

  kind: str  # the config's model.kind
  description: str  # for messages, e.g. "the image+text model (model.kind='pali')"
  streams: Tuple[str, ...]  # the input-embedding hook's streams, in encoder order
  d_model: int
  num_encoder_layers: int
  dtype: Any
  features: FrozenSet[str] = frozenset()  # names from FEATURES


class InputContext(NamedTuple):
  """Per-call inputs of the embedding hook. `vocab_table()` reads the text vocabulary table (only
  when a hook needs it, e.g. prompt rows initialised from it)."""

  task_id: Optional[Array]
  deterministic: bool
  vocab_table: Callable[[], Array]


# Runs the encoder once on the (hook-transformed) embeddings with an optional node hook
# (`adalink.models.t5.NodeHook`) and returns its output.
EncoderRun = Callable[[Optional[Callable[[int, Array], Array]]], Array]


@dataclasses.dataclass(frozen=True)
class MethodSpec:
  """A validated method configuration; the base of every registered method.

  `MethodSpec(name=..., **fields)` builds the registered method's own spec (without validation,
  as a plain dataclass); `spec_from_config` is the validating way in.
  """

  name: str

  # The `method.<field>`s the method accepts besides `name`.
  config_fields: ClassVar[Tuple[str, ...]] = ()
  # The collection whose leaves the optimiser trains (see `is_trainable`).
  trainable_collection: ClassVar[str] = layers.ADAPTERS
  # Model features the method needs (keys of FEATURES); see `check_supported`.
  requires: ClassVar[FrozenSet[str]] = frozenset()
  # Defaults a method may override with a dataclass field of the same name (plain class
  # attributes, so they are not fields of every method): > 1 task adapters means every batch
  # carries a 'task_id'; `lora_decoder` extends `lora_spec` to the decoder.
  num_tasks = 1
  lora_decoder = False

  def __new__(cls, *args, **kwargs):
    if cls is MethodSpec:
      cls = METHODS.get(kwargs["name"] if "name" in kwargs else (args[0] if args else None))
    return super().__new__(cls)

  def __post_init__(self):
    own = method_name(type(self))
    if self.name != own:
      raise ValueError(f"{type(self).__name__} is method {own!r}, got name={self.name!r}")

  @classmethod
  def from_config(cls, fields: Dict[str, Any], ctx: SpecContext) -> "MethodSpec":
    """The validated spec from `method.<field>`s (only those in `config_fields`; no `name`)."""
    del fields, ctx
    return cls()

  # -------------------------------------------------------------- what trains
  def is_trainable(self, collection: str, path: Tuple[str, ...]) -> bool:
    del path
    return collection == self.trainable_collection

  def extra_counts(self, trainable: Mapping[str, Any]) -> Dict[str, int]:
    """Counts to report next to `trainable` (shapes or arrays of the trainable variables)."""
    del trainable
    return {}

  # -------------------------------------------------------------- hooks
  @property
  def lora_spec(self) -> Optional[layers.LoraSpec]:
    return None

  def make_module(self, model: ModelInfo) -> Optional[nn.Module]:
    del model
    return None

  def embed(
    self,
    module: Optional[nn.Module],
    streams: Dict[str, Array],
    masks: Dict[str, Array],
    ctx: InputContext,
  ) -> Tuple[Dict[str, Array], Dict[str, Array]]:
    del module, ctx
    return streams, masks

  def embed_continuation(
    self, module: Optional[nn.Module], streams: Dict[str, Array], ctx: InputContext
  ) -> Dict[str, Array]:
    del module, ctx
    return streams

  def encode(
    self, module: Optional[nn.Module], run_encoder: EncoderRun, model: ModelInfo, deterministic
  ) -> Array:
    del module, model, deterministic
    return run_encoder(None)

  def check_inputs(self, *, packed: bool) -> None:
    """Raises ValueError for a batch the method cannot take (`packed`: several rows per row)."""
    del packed

  def check_model(self, model: ModelInfo) -> None:
    """Raises ValueError (naming the `method.<field>`) if this spec does not fit `model`."""
    del model


def method_name(cls: Type[MethodSpec]) -> str:
  """The name a method class is registered under: the default of its `name` field."""
  field = getattr(cls, "__dataclass_fields__", {}).get("name")
  name = None if field is None else field.default
  if not isinstance(name, str) or not name:
    raise TypeError(
      f"{cls.__name__}: a method is a frozen dataclass subclassing MethodSpec whose `name` field "
      f"defaults to its method name, e.g. name: str = 'my_method'"
    )
  return name


def register_method(cls: Type[MethodSpec]) -> Type[MethodSpec]:
  """Registers a method class under its name (usable as a class decorator)."""
  if not (isinstance(cls, type) and issubclass(cls, MethodSpec)) or cls is MethodSpec:
    raise TypeError(f"register_method takes a MethodSpec subclass, got {cls!r}")
  if not cls.__dataclass_params__.frozen:
    raise TypeError(f"{cls.__name__} must be a frozen dataclass (specs are Flax attributes)")
  METHODS.register(method_name(cls), cls)
  return cls


def unregister_method(name: str) -> None:
  METHODS.unregister(name)


# -------------------------------------------------------------------------- field validation


def rank_field(fields: Mapping[str, Any], d_model: int) -> int:
  r = fields.get("rank")
  if not isinstance(r, int) or isinstance(r, bool) or r <= 0 or r > d_model:
    raise ValueError(f"method.rank must be an integer in [1, d_model={d_model}], got {r!r}")
  return r


def dropout_field(fields: Mapping[str, Any], default: float) -> float:
  p = fields.get("dropout_rate", default)
  if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
    raise ValueError(f"method.dropout_rate must be in [0, 1), got {p!r}")
  return float(p)


def activation_field(fields: Mapping[str, Any]) -> str:
  activation = fields.get("activation", "linear")
  try:
    layers.activation_fn(activation)
  except ValueError as e:
    raise ValueError(f"method.activation: {e}") from None
  return activation


# -------------------------------------------------------------------------- model wrappers

# Model config type -> wrapper class (a Flax module `Wrapper(config, spec)` with a classmethod
# `model_info(config) -> ModelInfo` and a method `example_inputs()`).
_WRAPPERS: Dict[type, type] = {}


def register_wrapper(config_type: type, wrapper: type) -> type:
  _WRAPPERS[config_type] = wrapper
  return wrapper


def wrapper_for(model_cfg) -> type:
  """The wrapper class registered for `model_cfg`'s type (or one of its bases)."""
  for t in type(model_cfg).__mro__:
    if t in _WRAPPERS:
      return _WRAPPERS[t]
  known = sorted(t.__name__ for t in _WRAPPERS)
  raise ValueError(
    f"no PEFT model wrapper for a {type(model_cfg).__name__} model config (known: {known}); "
    "register one with adalink.peft.base.register_wrapper"
  )


def model_info(model) -> ModelInfo:
  """`model` as a ModelInfo: a ModelInfo, a wrapper instance, or a model config."""
  if isinstance(model, ModelInfo):
    return model
  if hasattr(model, "model_info") and hasattr(model, "config"):
    return type(model).model_info(model.config)
  return wrapper_for(model).model_info(model)


def supported_methods(model) -> Tuple[str, ...]:
  """Names of the registered methods whose required features `model` has."""
  info = model_info(model)
  return tuple(n for n in METHODS if not METHODS.get(n).requires - info.features)


def check_supported(spec: MethodSpec, model) -> None:
  """Raises ValueError unless `spec` can run on `model` (a model config, a wrapper instance or a
  ModelInfo): the model has every feature the method requires, and the spec fits the model
  (`check_model`: e.g. AdaLink's streams exist, placement's nodes are in range)."""
  info = model_info(model)
  missing = sorted(spec.requires - info.features)
  if missing:
    raise ValueError(
      f"config.method.name={spec.name!r} is not available on {info.description}: it needs "
      f"{'; '.join(FEATURES.get(m, m) for m in missing)}, which that model does not have; "
      f"methods available there: {', '.join(supported_methods(info))}"
    )
  spec.check_model(info)
