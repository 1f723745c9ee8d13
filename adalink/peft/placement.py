"""Adapters on edges of the T5 encoder's node graph: the edge modules, the encoder passes that add
them at their nodes (static or routed), and the registered `placement` method.

The nodes, the edge kinds and the order in which edges meeting at a node are added are in
`adalink.peft.placement_graph`; gradient-rank scoring of edges is in `placement_scores`. Each edge
(i, j) carries a low-rank map `A(h) = f(h W_down) W_up` (dropout on the bottleneck, as AdaLink),
added at node j. `W_down` ~ N(0, 1/d) (fan-in, as AdaLink's) and `W_up` = 0, so every edge of
every kind starts as the identity: the adapted model's logits equal the base model's exactly.

Routing. By default the edges are those of the method's spec, fixed when the model is traced. If
the variables carry `placement_routing/placement/edges` (int32 [k, 2] of (source, target) rows, see
`routed_variables`), the model reads the nodes from that array instead; only each slot's class
(forward = parallel or long-range, recurrent, sequential; `edge_set_shape`) stays static. So a
jitted step compiled once per shape trains every placement of that shape: the same data, the same
initial weights, one compile. The routed form equals the static one bit for bit (tested;
`_RoutedPass` says how), at a little more cost per step (each slot's small maps run at every
node), which is why a set trained once is better built statically.

The method (`method.name = 'placement'`, `PlacementMethod`) needs the encoder node hook, which only
the text T5's wrapper exposes. Config fields: `rank`, `edges` (required), `activation`,
`dropout_rate` (default 0.1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import layers
from adalink.peft.base import (
  ENCODER_NODES,
  EncoderRun,
  MethodSpec,
  activation_field,
  dropout_field,
  rank_field,
  register_method,
)
from adalink.peft.placement_graph import (
  CLASS_ORDER,
  Edge,
  check_edges_in_range,
  edge_set_shape,
  needs_two_passes,
  num_nodes,
  parse_edges,
  routing_table,
)

Array = jax.Array

# The variable collection that, when present, overrides the spec's edges (see the module docstring),
# and the name of the method's module (its weights sit at adapters/placement/edge_{s}).
ROUTING = "placement_routing"
MODULE_NAME = "placement"


class EdgeAdapter(nn.Module):
  """One edge's map A(h) = dropout(f(h W_down)) W_up; weights `down` [d, r], `up` [r, d].

  `bottleneck(h) = f(h W_down)` and `expand(z) = dropout(z) W_up` are its two halves.
  """

  features: int
  rank: int
  activation: str = "linear"
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  def setup(self):
    d = self.features
    self.down = layers.param_with_axes(
      self,
      "down",
      nn.initializers.normal(stddev=d**-0.5),
      (d, self.rank),
      jnp.float32,
      (layers.EMBED, None),
      layers.ADAPTERS,
    )
    self.up = layers.param_with_axes(
      self,
      "up",
      nn.initializers.zeros,
      (self.rank, d),
      jnp.float32,
      (None, layers.EMBED),
      layers.ADAPTERS,
    )
    self.dropout = nn.Dropout(self.dropout_rate)

  def bottleneck(self, h: Array) -> Array:
    z = jnp.einsum("bld,dr->blr", h.astype(self.dtype), self.down.astype(self.dtype))
    return layers.activation_fn(self.activation)(z)

  def expand(self, z: Array, deterministic: bool = True) -> Array:
    z = self.dropout(z, deterministic=deterministic)
    return jnp.einsum("blr,rd->bld", z, self.up.astype(self.dtype))

  def __call__(self, h: Array, deterministic: bool = True) -> Array:
    return self.expand(self.bottleneck(h), deterministic)


class EdgeAdapters(nn.Module):
  """The adapters of an edge set, one `EdgeAdapter` per slot: weights at `placement/edge_{s}/{down,
  up}` in the `adapters` collection, s the edge's index in `method.edges` (the config records which
  edge that is). Slot names rather than (i, j) names keep the tree of a k-edge set independent of
  where the edges sit, which is what lets one compiled step serve every placement of one shape."""

  num_edges: int
  features: int
  rank: int
  activation: str = "linear"
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  def setup(self):
    self.edge = [
      EdgeAdapter(self.features, self.rank, self.activation, self.dropout_rate, self.dtype)
      for _ in range(self.num_edges)
    ]

  def __call__(self, slot: int, h: Array, deterministic: bool = True) -> Array:
    return self.edge[slot](h, deterministic)

  def routing(self) -> Optional[Array]:
    """The `placement_routing` edges when the variables carry them (see `routed_variables`)."""
    if self.has_variable(ROUTING, "edges"):
      return self.get_variable(ROUTING, "edges")
    return None


def _add(h: Array, delta: Array) -> Array:
  return (h + delta).astype(h.dtype)


class _StaticPass:
  """Node hook for one encoder pass with edges known at trace time (only real edges computed).

  `feedback` (the first pass's node states) turns the recurrent edges on."""

  def __init__(
    self,
    edges: Sequence[Edge],
    adapters: EdgeAdapters,
    deterministic: bool,
    feedback: Optional[List[Array]] = None,
  ):
    self.edges, self.adapters, self.det = tuple(edges), adapters, deterministic
    self.feedback = feedback
    self.states: List[Array] = []

  def __call__(self, k: int, h: Array) -> Array:
    apply = lambda s, x: self.adapters(s, x, self.det)
    for s, e in enumerate(self.edges):
      if e.dst == k and e.src < k:
        h = _add(h, apply(s, self.states[e.src]))
    if self.feedback is not None:
      for s, e in enumerate(self.edges):
        if e.dst == k and e.src > k:
          h = _add(h, apply(s, self.feedback[e.src]))
    for s, e in enumerate(self.edges):
      if e.src == e.dst == k:
        h = _add(h, apply(s, h))
    self.states.append(h)
    return h

  def carry(self):
    return self.states


class _RoutedPass:
  """Node hook whose edges' nodes are traced int32 arrays; only each slot's class is static.

  Every slot runs at every node of its class's steps, gated by exact 0/1 masks:
    forward slots carry the bottleneck of their source, `acc[s] = sum_m [src == m] f(h_m W_down)`,
      accumulated as nodes finish (exactly f(h_src W_down): one term is it, the rest exact zeros),
      and add `expand([dst == k] acc[s])` at node k;
    recurrent slots accumulate the same way in the first pass and, in the second, add
      `expand([dst == k] fb[s])` with fb the first pass's accumulated bottleneck;
    sequential slots add `expand([src == dst == k] f(h_k W_down))`.
  Slots are applied one by one, in `_StaticPass`'s order (forward, recurrent, sequential, each in
  slot order), through the slot's own `EdgeAdapter.bottleneck` / `expand`: an inactive slot adds
  an exact zero and an active one the static value, so the routed pass equals the static pass bit
  for bit, however many edges meet at a node. (Stacking the slots into one contraction would be
  fewer ops, but XLA does not promise it rounds like the per-edge one, and on some CPUs it does
  not.)
  """

  def __init__(
    self,
    src: Array,
    dst: Array,
    classes: Tuple[str, ...],
    num_nodes_: int,
    adapters: EdgeAdapters,
    deterministic: bool,
    feedback: Optional[Dict[int, Array]] = None,
  ):
    self.adapters, self.det, self.n = adapters, deterministic, num_nodes_
    self.second_pass = feedback is not None
    self.fb = feedback
    self.slots = {cls: [s for s, c in enumerate(classes) if c == cls] for cls in CLASS_ORDER}
    nodes = jnp.arange(num_nodes_)
    gate = lambda m: m.astype(adapters.dtype)  # [n] of exact 0/1
    self.at_target = [gate(dst[s] == nodes) for s in range(len(classes))]
    self.at_source = [gate(src[s] == nodes) for s in range(len(classes))]
    self.at_self = [gate((src[s] == nodes) & (dst[s] == nodes)) for s in range(len(classes))]
    self.acc: Dict[int, Array] = {}

  def _expand(self, s, h, z):
    return _add(h, self.adapters.edge[s].expand(z, self.det))

  def _accumulate(self, cls, k, h):
    for s in self.slots[cls]:
      z = self.at_source[s][k] * self.adapters.edge[s].bottleneck(h)
      self.acc[s] = z if s not in self.acc else self.acc[s] + z

  def __call__(self, k: int, h: Array) -> Array:
    if k > 0:
      for s in self.slots["forward"]:
        h = self._expand(s, h, self.at_target[s][k] * self.acc[s])
    if self.second_pass and k < self.n - 1:
      for s in self.slots["recurrent"]:
        h = self._expand(s, h, self.at_target[s][k] * self.fb[s])
    for s in self.slots["sequential"]:
      h = self._expand(s, h, self.at_self[s][k] * self.adapters.edge[s].bottleneck(h))
    if k < self.n - 1:  # a forward source precedes its target
      self._accumulate("forward", k, h)
    if not self.second_pass and k > 0:
      self._accumulate("recurrent", k, h)
    return h

  def carry(self):
    return {s: self.acc[s] for s in self.slots["recurrent"]}


def encode(
  run_encoder: EncoderRun,
  adapters: EdgeAdapters,
  edges: Sequence[Edge],
  num_layers: int,
  deterministic: bool = True,
  routing: Optional[Array] = None,
) -> Array:
  """The encoder output with the edge adapters in place (two passes if any edge is recurrent).

  `run_encoder(node_hook)` runs the `num_layers`-layer encoder once on the embeddings with the
  hook. `routing` (int32 [k, 2], optional) replaces the edges' (source, target) pairs at run
  time; the static `edges` then only fix the shape: k and whether a second pass runs.
  """
  n = num_nodes(num_layers)
  if routing is not None and tuple(routing.shape) != (len(edges), 2):
    raise ValueError(
      f"{ROUTING}/edges has shape {tuple(routing.shape)}, but the model was "
      f"built for {len(edges)} edges: expected ({len(edges)}, 2)"
    )

  def make_pass(feedback):
    if routing is None:
      return _StaticPass(edges, adapters, deterministic, feedback)
    return _RoutedPass(
      routing[:, 0],
      routing[:, 1],
      edge_set_shape(edges),
      n,
      adapters,
      deterministic,
      feedback,
    )

  feedback = None
  if needs_two_passes(edges):
    first = make_pass(None)
    run_encoder(first)
    feedback = first.carry()
  return run_encoder(make_pass(feedback))


def routed_variables(
  variables: Mapping[str, Any], template: Sequence[Edge], edges: Sequence[Edge]
) -> Dict[str, Any]:
  """`variables` (or a frozen split) with `placement_routing` set, so that a model built for the
  `template` edge set runs `edges` instead (slot s of the model carries edges[s]). Refused unless
  both have the same shape: the same slot classes in the same order (see `edge_set_shape`)."""
  edges = tuple(edges)
  if edge_set_shape(edges) != edge_set_shape(template):
    show = lambda es: "[" + ", ".join(str(e) for e in es) + "]"
    classes = lambda es: "[" + ", ".join(edge_set_shape(es)) + "]"
    raise ValueError(
      f"cannot route edges {show(edges)} (slot classes {classes(edges)}) through a "
      f"model built for {show(template)} (slot classes {classes(template)}); build "
      "the model from an edge set of the same shape (see canonical_order)"
    )
  return {**variables, ROUTING: {MODULE_NAME: {"edges": jnp.asarray(routing_table(edges))}}}


@register_method
@dataclasses.dataclass(frozen=True)
class PlacementMethod(MethodSpec):
  """Low-rank adapters on edges of the encoder's node graph (`method.edges`)."""

  name: str = "placement"
  rank: int = 0
  edges: Tuple[Edge, ...] = ()
  activation: str = "linear"
  dropout_rate: float = 0.1

  config_fields = ("rank", "edges", "activation", "dropout_rate")
  requires = frozenset({ENCODER_NODES})

  @classmethod
  def from_config(cls, fields, ctx) -> "PlacementMethod":
    rank = rank_field(fields, ctx.d_model)
    if "edges" not in fields:
      raise ValueError(
        "method.edges is missing: list the adapter edges (source node, target "
        "node[, kind]), e.g. [(0, 0, 'sequential')] for AdaLink's placement"
      )
    edges = parse_edges(fields["edges"], ctx.num_encoder_layers, field="method.edges")
    return cls(
      rank=rank,
      edges=edges,
      activation=activation_field(fields),
      dropout_rate=dropout_field(fields, 0.1),
    )

  def check_model(self, model) -> None:
    # The spec may have been made without the layer count; check the nodes before any tracing.
    check_edges_in_range(self.edges, model.num_encoder_layers)

  def make_module(self, model):
    return EdgeAdapters(
      len(self.edges),
      model.d_model,
      self.rank,
      self.activation,
      self.dropout_rate,
      model.dtype,
      name=MODULE_NAME,
    )

  def encode(self, module, run_encoder, model, deterministic) -> Array:
    return encode(
      run_encoder, module, self.edges, model.num_encoder_layers, deterministic, module.routing()
    )
