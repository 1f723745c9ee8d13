"""AdaLink: a low-rank residual transform of input embeddings, `E~ = E + f(E W_down) W_up`.

It sits between the embedding stage and the first encoder block, so the frozen network is
untouched. One `AdaLink` serves one input stream (a modality such as text or image tokens); with
`num_tasks > 1` it holds one adapter per task as stacked weights [tasks, d, r] and picks each
example's adapter by gathering with its task id, so a batch may mix tasks.

Initialisation: `W_up` is zero, so the adapted model starts exactly at the base model. `W_down`
is drawn from N(0, 1/d) (fan-in scaling): the bottleneck `E W_down` then has the scale of the
embeddings, which makes the first gradient of `W_up` (that bottleneck times the output gradient)
non-zero and well scaled. Were both zero, neither would ever move.

Dropout (default 0.1, the paper's rate) acts on the bottleneck, after the activation, so it only
perturbs the adapter's contribution and never the frozen embeddings themselves.

With the identity activation and dropout off, the text adapter is linear in the embedding row,
so it can be folded into the vocabulary table (`fold_into_embedding`) and served at zero cost.

As a method (`method.name = 'adalink'`) its hook is the input-embedding one: `InputAdapters` maps
the named streams (`method.streams`, default text) before the encoder, one adapter per stream or,
with `method.unified`, one shared by all of them (the paper's Table 3 baseline), so an adapter on
one modality never touches another's embeddings. Config fields: `rank` (1..d_model), `streams`,
`per_task` (one adapter per task of the mixture, routed by each example's `task_id`; packed rows
refused), `num_tasks` (overrides the mixture's task count), `unified`, `activation` (default
linear), `dropout_rate` (default 0.1). Weights live at `adapters/adalink/<stream or unified>`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import layers
from adalink.peft.base import (
  MethodSpec,
  activation_field,
  dropout_field,
  rank_field,
  register_method,
)

Array = jax.Array


class AdaLink(nn.Module):
  """One stream's adapter; weights `down` [tasks, d, r] and `up` [tasks, r, d] in `adapters`."""

  rank: int
  num_tasks: int = 1
  activation: str = "linear"
  dropout_rate: float = 0.1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(
    self, embeddings: Array, task_id: Optional[Array] = None, deterministic: bool = True
  ) -> Array:
    d = embeddings.shape[-1]
    down = layers.param_with_axes(
      self,
      "down",
      nn.initializers.normal(stddev=d**-0.5),
      (self.num_tasks, d, self.rank),
      jnp.float32,
      ("tasks", layers.EMBED, None),
      layers.ADAPTERS,
    )
    up = layers.param_with_axes(
      self,
      "up",
      nn.initializers.zeros,
      (self.num_tasks, self.rank, d),
      jnp.float32,
      ("tasks", None, layers.EMBED),
      layers.ADAPTERS,
    )
    x = embeddings.astype(self.dtype)
    if self.num_tasks == 1:
      h = jnp.einsum("bld,dr->blr", x, down[0].astype(self.dtype))
    else:
      if task_id is None:
        raise ValueError(
          f"AdaLink {self.name!r} has {self.num_tasks} task adapters but the batch "
          "has no 'task_id' feature"
        )
      task_id = jnp.asarray(task_id, jnp.int32).reshape(-1)
      # Each example multiplies by its own task's weights: a gather, not a loop over tasks.
      h = jnp.einsum("bld,bdr->blr", x, jnp.take(down, task_id, axis=0).astype(self.dtype))
    h = layers.activation_fn(self.activation)(h)
    h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
    if self.num_tasks == 1:
      delta = jnp.einsum("blr,rd->bld", h, up[0].astype(self.dtype))
    else:
      delta = jnp.einsum("blr,brd->bld", h, jnp.take(up, task_id, axis=0).astype(self.dtype))
    return (x + delta).astype(embeddings.dtype)


@register_method
@dataclasses.dataclass(frozen=True)
class AdaLinkMethod(MethodSpec):
  name: str = "adalink"
  rank: int = 0
  streams: Tuple[str, ...] = ("text",)
  num_tasks: int = 1  # > 1: one adapter per task, chosen per example by task_id
  unified: bool = False  # one adapter over all streams
  activation: str = "linear"
  dropout_rate: float = 0.1

  config_fields = (
    "rank",
    "streams",
    "num_tasks",
    "per_task",
    "unified",
    "activation",
    "dropout_rate",
  )

  @classmethod
  def from_config(cls, fields, ctx) -> "AdaLinkMethod":
    rank = rank_field(fields, ctx.d_model)
    streams = tuple(fields.get("streams", ("text",)))
    if not streams:
      raise ValueError("method.streams is empty: name at least one input stream to adapt")
    check_streams(streams, ctx.available_streams)
    per_task = bool(fields.get("per_task", False))
    tasks = int(fields.get("num_tasks", ctx.num_tasks if per_task else 1))
    if per_task and tasks < 2:
      raise ValueError(f"method.per_task needs a mixture of >= 2 tasks, got num_tasks={tasks}")
    activation = activation_field(fields)
    return cls(
      rank=rank,
      streams=streams,
      num_tasks=tasks if per_task else 1,
      unified=bool(fields.get("unified", False)),
      activation=activation,
      dropout_rate=dropout_field(fields, 0.1),
    )

  def check_model(self, model) -> None:
    check_streams(self.streams, model.streams)

  def make_module(self, model):
    return InputAdapters(self, model.dtype, name="adalink")

  def embed(self, module, streams, masks, ctx):
    return module(streams, ctx.task_id, ctx.deterministic), masks

  def embed_continuation(self, module, streams, ctx):
    # A decoder-only model reads its continuation from the same input table: adapt it alike,
    # so the module equals a folded table.
    return module(streams, ctx.task_id, ctx.deterministic)

  def check_inputs(self, *, packed: bool) -> None:
    if packed and self.num_tasks > 1:
      raise ValueError("per-task AdaLink needs one task per row: set data.pack = False")


def check_streams(streams, available) -> None:
  for s in streams:
    if s not in available:
      raise ValueError(f"method.streams: unknown stream {s!r}; this model has {list(available)}")


class InputAdapters(nn.Module):
  """The AdaLink modules of a model: one per stream, or one `unified` module for all streams."""

  spec: AdaLinkMethod
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, streams: Dict[str, Array], task_id=None, deterministic: bool = True):
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


def fold_into_embedding(
  embedding: Array, down: Array, up: Array, activation: str = "linear"
) -> Array:
  """The vocabulary table with the adapter applied to every row: `Emb + Emb W_down W_up`.

  `down` [tasks, d, r] and `up` [tasks, r, d] as stored (or 2-D for one task). Returns
  [tasks, vocab, d] (or [vocab, d]). Exact only for the identity activation, since a token's
  adapted embedding must depend on that token's row alone and linearly; refused otherwise.
  """
  if activation != "linear":
    raise ValueError(
      f"folding needs the identity activation ('linear'), got {activation!r}: "
      "a non-linear adapter must be served as a module"
    )
  emb = embedding.astype(jnp.float32)
  if down.ndim == 2:
    return emb + (emb @ down) @ up
  return emb[None] + jnp.einsum("vd,tdr,tre->tve", emb, down, up)


def folded_serving_params(
  params, adapters, activation: str = "linear", task: int = 0, stream: str = "text"
):
  """Base params plus an `encoder_token_embedder` holding the folded table for one task.

  Serve them with `config.replace(separate_encoder_embedding=True)`: the encoder then reads the
  folded table and the decoder (and a tied LM head) the original one, at the base model's cost.
  """
  ad = adapters.get("adalink", {})
  node = ad.get(stream, ad.get("unified"))
  if node is None:
    raise KeyError(f"no AdaLink adapter for stream {stream!r} (found {sorted(ad)})")
  n_tasks = node["down"].shape[0]
  if not 0 <= task < n_tasks:
    raise ValueError(f"task {task} out of range: the adapter holds {n_tasks} task(s)")
  table = params["token_embedder"]["embedding"]
  folded = fold_into_embedding(table, node["down"][task], node["up"][task], activation)
  return {**params, "encoder_token_embedder": {"embedding": folded.astype(table.dtype)}}
