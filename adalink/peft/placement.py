"""Adapter placement on the T5 encoder's node graph, and scoring placements by gradient rank.

The search space of Nowak et al. 2024 ("Towards Optimal Adapter Placement for Efficient Transfer
Learning", arXiv 2410.15858), on this codebase's encoder. AdaLink is one point of it: a sequential
adapter at node 0.

Nodes (an L-layer encoder has 2L+1 of them; `Encoder(node_hook=...)` visits them in order):
  0      the input embeddings as `T5.encode_embedded` receives them (before the input dropout);
  2l-1   the residual stream after layer l's attention residual add (l = 1..L);
  2l     the residual stream after layer l's MLP residual add (node 2L is before the final norm).

Edges. An adapter is an edge (i, j) carrying a low-rank map `A(h) = f(h W_down) W_up` (dropout on
the bottleneck, as AdaLink) whose output is added at node j. Its kind follows from (i, j):
  sequential  i == j     h_i <- h_i + A(h_i)             (edge (0, 0) is AdaLink)
  parallel    j == i+1   h_j += A(h_i), around one sub-block (h_i as that sub-block reads it)
  long_range  j > i+1    h_j += A(h_i), skipping sub-blocks
  recurrent   j < i      two encoder passes: the first, with every non-recurrent edge in place,
                         gives h_i; the second adds A(h_i) (h_i from the first pass) at node j.
                         The second pass is the model's output, so every node after j in it (i
                         included) sees the change; the first pass's h_i does not.
At a node the order is fixed: the network's own value, plus the forward (parallel / long-range)
edges arriving there, plus the recurrent edges arriving there, then the sequential edge of that
node on the sum. The node's value after all of that is what later sub-blocks and outgoing edges
read.

Initialisation: `W_down` ~ N(0, 1/d) (fan-in, as AdaLink's), `W_up` = 0, so every edge of every
kind starts as the identity: the adapted model's logits equal the base model's exactly.

Weights live in the `adapters` collection at `placement/edge_{s}/{down, up}` ([d, r] and [r, d]),
where s is the edge's index in `method.edges` (the config records which edge that is). Slot names
rather than (i, j) names keep the tree of a k-edge set independent of where the edges sit, which
is what lets one compiled train step serve every placement of the same shape.

Routing. By default the edges are those of the method's spec, fixed when the model is traced. If
the variables carry `placement_routing/placement/edges` (int32 [k, 2] of (source, target) rows, see
`routed_variables`), the model reads the nodes from that array instead; only each slot's class
(forward = parallel or long-range, recurrent, sequential; `edge_set_shape`) stays static. So a
jitted step compiled once per shape trains every placement of that shape: the same data, the same
initial weights, one compile. The routed form gates each slot with exact 0/1 masks at every node
(`_RoutedPass`) and adds the slots in the static form's order, so it equals the static form bit
for bit (tested). It costs a little more per step (each slot's small maps run at every node),
which is why a set trained once is better built statically.

The method (`method.name = 'placement'`, `PlacementMethod`) needs the encoder node hook, which only
the text T5's wrapper exposes. Config fields: `rank`, `edges` (required), `activation`,
`dropout_rate` (default 0.1).

Gradient rank (`score_edges`). At initialisation (W_up = 0) the gradient of the loss with respect to
a full d x d linear map M on edge (i, j) (h_j += h_i M) is G_ij = sum over non-padding tokens of
h_i^T g_j, with g_j = dL/dh_j. One forward and one backward pass give every h_i and g_j: a zero
"probe" is added at every node and the loss is differentiated with respect to the probes. G is
accumulated over batches in float64, then rank(G) = #{singular values > rtol * sigma_max}.
`DEFAULT_RTOL` is justified at its definition. The loss is the caller's (the trainer's token
cross-entropy, `adalink.train.step.cross_entropy`), passed in as `loss_fn`: peft sits below train.
"""

from __future__ import annotations

import dataclasses
from typing import (
  Any,
  Callable,
  Dict,
  Iterable,
  List,
  Mapping,
  NamedTuple,
  Optional,
  Sequence,
  Tuple,
)

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn

from adalink.models import layers, t5
from adalink.peft.base import (
  ENCODER_NODES,
  EncoderRun,
  MethodSpec,
  activation_field,
  dropout_field,
  rank_field,
  register_method,
)

Array = jax.Array

KINDS = ("sequential", "parallel", "long_range", "recurrent")
_KIND_ALIASES = {"long-range": "long_range", "longrange": "long_range"}
# The variable collection that, when present, overrides the spec's edges (see the module docstring),
# and the name of the method's module (its weights sit at adapters/placement/edge_{s}).
ROUTING = "placement_routing"
MODULE_NAME = "placement"

# Relative singular-value tolerance of the gradient rank. G is accumulated from float32 network
# states and gradients, so it carries their rounding: on the tiny 4-layer model (d = 32, 4 batches
# of 32 x 128 byte tokens) G computed in float32 differs from the same G computed in float64 by
# ~3e-7 sigma_max in spectral norm, and that floor grows roughly with sqrt(tokens). Singular values
# below ~1e-6 sigma_max are thus indistinguishable from rounding (numpy's matrix_rank default,
# d * eps_f32 = 3.8e-6 for d = 32, assumes an exactly computed matrix and sits right at this floor).
# 1e-5 keeps a ~30x margin above the measured floor, room for longer accumulations, while counting
# every direction that is not rounding. It is the numerical rank; a study may choose a coarser
# tolerance to count only strong directions (configs/placement.py does, and says why).
DEFAULT_RTOL = 1e-5


# ----------------------------------------------------------------------------- the node graph


def num_nodes(num_layers: int) -> int:
  return 2 * int(num_layers) + 1


def node_label(k: int) -> str:
  """'emb' for node 0, 'L{l}.attn' / 'L{l}.mlp' for the nodes after layer l's sub-blocks."""
  if k == 0:
    return "emb"
  return f"L{(k + 1) // 2}.{'attn' if k % 2 else 'mlp'}"


def edge_kind(src: int, dst: int) -> str:
  if src == dst:
    return "sequential"
  if dst == src + 1:
    return "parallel"
  if dst > src + 1:
    return "long_range"
  return "recurrent"


class Edge(NamedTuple):
  src: int
  dst: int
  kind: str

  def __str__(self) -> str:
    return f"({self.src}, {self.dst}, {self.kind!r})"


def _as_node(value, where: str, what: str) -> int:
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"{where}: the {what} node must be an integer, got {value!r}")
  if value < 0:
    raise ValueError(f"{where}: the {what} node must be >= 0, got {int(value)}")
  return int(value)


def parse_edge(value, where: str = "edge") -> Edge:
  """An `Edge` from (i, j), (i, j, kind), or the strings 'i:j' / 'i:j:kind'.

  Without a kind it is inferred from (i, j); with one it must agree with (i, j).
  """
  raw = value
  if isinstance(value, str):
    parts = [p.strip() for p in value.split(":")]
    if len(parts) not in (2, 3):
      raise ValueError(f"{where} = {raw!r}: write an edge as 'i:j' or 'i:j:kind'")
    try:
      value = [int(parts[0]), int(parts[1])] + parts[2:]
    except ValueError:
      raise ValueError(f"{where} = {raw!r}: the nodes must be integers") from None
  if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
    raise ValueError(f"{where} = {raw!r}: an edge is (source, target) or (source, target, kind)")
  src = _as_node(value[0], f"{where} = {raw!r}", "source")
  dst = _as_node(value[1], f"{where} = {raw!r}", "target")
  kind = edge_kind(src, dst)
  if len(value) == 3:
    given = value[2]
    if not isinstance(given, str):
      raise ValueError(f"{where} = {raw!r}: the kind must be a string, one of {list(KINDS)}")
    given = _KIND_ALIASES.get(given, given)
    if given not in KINDS:
      raise ValueError(f"{where} = {raw!r}: unknown kind {value[2]!r}; known: {list(KINDS)}")
    if given != kind:
      raise ValueError(
        f"{where} = {raw!r}: kind {given!r} does not match ({src}, {dst}), which is a {kind} "
        f"edge (sequential: i == j; parallel: j == i+1; long_range: j > i+1; recurrent: j < i)"
      )
  return Edge(src, dst, kind)


def check_edges_in_range(edges: Sequence[Edge], num_layers: int, field: str = "method.edges"):
  n = num_nodes(num_layers)
  for idx, e in enumerate(edges):
    for node in (e.src, e.dst):
      if node >= n:
        raise ValueError(
          f"{field}[{idx}] = {e}: node {node} is out of range for a "
          f"{num_layers}-layer encoder (nodes 0..{n - 1})"
        )


def parse_edges(
  value, num_layers: Optional[int] = None, field: str = "method.edges"
) -> Tuple[Edge, ...]:
  """Validates a list of edges (each as in `parse_edge`); errors name `field[index]` and the edge.

  With `num_layers` the nodes are also checked against the encoder's 2L+1 nodes.
  """
  if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
    raise ValueError(
      f"{field} must be a list of edges such as [(0, 0, 'sequential')], got {value!r}"
    )
  edges = tuple(parse_edge(v, f"{field}[{i}]") for i, v in enumerate(value))
  if not edges:
    raise ValueError(f"{field} is empty: give at least one edge, e.g. [(0, 0, 'sequential')]")
  seen: Dict[Tuple[int, int], int] = {}
  for i, e in enumerate(edges):
    if (e.src, e.dst) in seen:
      raise ValueError(f"{field}[{i}] = {e}: duplicate of {field}[{seen[(e.src, e.dst)]}]")
    seen[(e.src, e.dst)] = i
  if num_layers is not None:
    check_edges_in_range(edges, num_layers, field)
  return edges


def grid_edges(nodes: Iterable[int]) -> List[Edge]:
  """Every edge (i, j) with i and j in `nodes` (a subsampled adjacency matrix), row-major."""
  nodes = sorted(set(int(k) for k in nodes))
  return [Edge(i, j, edge_kind(i, j)) for i in nodes for j in nodes]


def everywhere_edges(num_layers: int) -> List[Edge]:
  """A parallel adapter around every sub-block: (k, k+1) for k = 0..2L-1 (the usual baseline)."""
  return [Edge(k, k + 1, "parallel") for k in range(2 * num_layers)]


def needs_two_passes(edges: Sequence[Edge]) -> bool:
  return any(e.kind == "recurrent" for e in edges)


# How the routed encoder treats an edge: it reads its source in the same pass and adds at a later
# node (forward: parallel and long-range alike), reads the first pass (recurrent), or maps its own
# node (sequential).
SLOT_CLASSES = {
  "sequential": "sequential",
  "parallel": "forward",
  "long_range": "forward",
  "recurrent": "recurrent",
}
_CLASS_ORDER = ("forward", "recurrent", "sequential")


def slot_class(edge: Edge) -> str:
  return SLOT_CLASSES[edge.kind]


def edge_set_shape(edges: Sequence[Edge]) -> Tuple[str, ...]:
  """What a compiled routed model depends on: each slot's class, in slot order. Edge sets of the
  same shape (after `canonical_order`) share one compiled step."""
  return tuple(slot_class(e) for e in edges)


def canonical_order(edges: Sequence[Edge]) -> List[Edge]:
  """The edges sorted by class (forward, recurrent, sequential), then source and target, so that
  sets with the same numbers of each class have the same shape."""
  return sorted(edges, key=lambda e: (_CLASS_ORDER.index(slot_class(e)), e.src, e.dst))


# ----------------------------------------------------------------------------- modules


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
  """The adapters of an edge set, one `EdgeAdapter` per slot (`edge_0`, `edge_1`, ...)."""

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


# ----------------------------------------------------------------------------- one encoder pass


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
    self.slots = {cls: [s for s, c in enumerate(classes) if c == cls] for cls in _CLASS_ORDER}
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
      routing[:, 0], routing[:, 1], edge_set_shape(edges), n, adapters, deterministic, feedback
    )

  feedback = None
  if needs_two_passes(edges):
    first = make_pass(None)
    run_encoder(first)
    feedback = first.carry()
  return run_encoder(make_pass(feedback))


def routing_table(edges: Sequence[Edge]) -> np.ndarray:
  return np.asarray([[e.src, e.dst] for e in edges], np.int32).reshape(len(edges), 2)


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


# ----------------------------------------------------------------------------- the method


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


# ----------------------------------------------------------------------------- gradient rank


def _model_features(batch: Mapping[str, Array]) -> Dict[str, Optional[Array]]:
  get = lambda k: batch[k] if k in batch else None
  return {
    k: get(k)
    for k in (
      "encoder_segment_ids",
      "encoder_positions",
      "decoder_segment_ids",
      "decoder_positions",
    )
  }


# The token loss: (logits, targets, weights) -> (summed weighted loss, weight sum, ...), as
# `adalink.train.step.cross_entropy`; the scored loss is their ratio.
TokenLoss = Callable[[Array, Array, Array], Tuple[Array, ...]]


def node_states_and_grads(
  config: t5.T5Config, params, batch: Mapping[str, Array], loss_fn: TokenLoss
):
  """(h, g, mask): every node's state h [n, b, l, d] and loss gradient g = dL/dh [n, b, l, d] of
  the base model, from one forward and one backward pass, and the encoder mask [b, l].

  A zero probe p_k is added at node k after its value is read; dL/dp_k is dL/dh_k. The loss is
  `loss_fn`'s mean over `decoder_loss_weights` (pass the training loss), without dropout.
  """
  model = t5.T5(config)
  tokens = batch["encoder_input_tokens"]
  mask = tokens != config.pad_token_id
  extra = _model_features(batch)
  n = num_nodes(config.num_encoder_layers)

  def loss(probes):
    states: List[Array] = []

    def hook(k, h):
      states.append(h)
      return h + probes[k].astype(h.dtype)

    def forward(module: t5.T5):
      encoded = module.encode_embedded(
        module.embed(tokens),
        mask,
        extra["encoder_segment_ids"],
        extra["encoder_positions"],
        True,
        node_hook=hook,
      )
      return module.decode(
        encoded,
        mask,
        batch["decoder_input_tokens"],
        batch["decoder_target_tokens"],
        extra["encoder_segment_ids"],
        extra["decoder_segment_ids"],
        extra["decoder_positions"],
        True,
      )

    logits = model.apply({"params": params}, method=forward)
    loss_sum, weight_sum = loss_fn(
      logits, batch["decoder_target_tokens"], batch["decoder_loss_weights"]
    )[:2]
    return loss_sum / jnp.maximum(weight_sum, 1.0), jnp.stack(states)

  probes = jnp.zeros((n,) + tokens.shape + (config.d_model,), config.jnp_dtype)
  grads, states = jax.grad(loss, has_aux=True)(probes)
  return states, grads, mask


def gradient_products(
  config: t5.T5Config, params, batch: Mapping[str, Array], loss_fn: TokenLoss
) -> Array:
  """G [n, n, d, d] for one batch: G[i, j] = sum over non-padding tokens of h_i^T g_j, the
  gradient of a full linear map on edge (i, j) at initialisation, for every (i, j) at once."""
  h, g, mask = node_states_and_grads(config, params, batch, loss_fn)
  h = h.astype(jnp.float32) * mask[None, :, :, None].astype(jnp.float32)
  return jnp.einsum(
    "ibld,jble->ijde", h, g.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST
  )


def ranks_from_products(products: np.ndarray, rtol: float = DEFAULT_RTOL):
  """(ranks, singular values) of every [..., d, d] matrix: #{s > rtol * s_max} (0 if G == 0)."""
  if not 0.0 < rtol < 1.0:
    raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
  sv = np.linalg.svd(np.asarray(products, np.float64), compute_uv=False)
  top = sv[..., :1]
  ranks = np.sum((sv > rtol * top) & (top > 0), axis=-1)
  return ranks.astype(np.int64), sv


@dataclasses.dataclass
class EdgeScores:
  """Gradient-rank scores. `ranks[i, j]` is edge (i, j)'s rank (-1 where not scored)."""

  ranks: np.ndarray
  singular_values: np.ndarray  # [n, n, d], descending, float64
  products: np.ndarray  # [n, n, d, d] accumulated G, float64
  rtol: float
  num_batches: int
  num_tokens: int

  def rank(self, edge: Edge) -> int:
    return int(self.ranks[edge.src, edge.dst])


def score_edges(
  config: t5.T5Config,
  params,
  batches: Iterable[Mapping[str, Array]],
  num_batches: int,
  rtol: float = DEFAULT_RTOL,
  edges: Optional[Sequence[Edge]] = None,
  *,
  loss_fn: TokenLoss,
) -> EdgeScores:
  """Gradient rank of every edge (or of `edges`) over `num_batches` batches, G accumulated in
  float64 before one SVD per edge. One jitted forward+backward per batch serves all edges.
  `loss_fn` is the token loss (`adalink.train.step.cross_entropy` for the training loss)."""
  if not isinstance(num_batches, int) or num_batches <= 0:
    raise ValueError(f"num_batches must be a positive integer, got {num_batches!r}")
  if not callable(loss_fn):
    raise ValueError(f"loss_fn must be a token loss function, got {loss_fn!r}")
  step = jax.jit(lambda p, b: gradient_products(config, p, b, loss_fn))
  total, count, tokens = None, 0, 0
  for batch in batches:
    if count == num_batches:
      break
    batch = {
      k: jnp.asarray(v)
      for k, v in batch.items()
      if k
      in (
        "encoder_input_tokens",
        "decoder_input_tokens",
        "decoder_target_tokens",
        "decoder_loss_weights",
        "encoder_segment_ids",
        "encoder_positions",
        "decoder_segment_ids",
        "decoder_positions",
      )
    }
    g = np.asarray(step(params, batch), np.float64)
    total = g if total is None else total + g
    tokens += int(np.sum(np.asarray(batch["encoder_input_tokens"]) != config.pad_token_id))
    count += 1
  if count < num_batches:
    raise ValueError(f"score_edges asked for {num_batches} batches, the data gave {count}")
  ranks, sv = ranks_from_products(total, rtol)
  if edges is not None:
    keep = np.zeros(ranks.shape, bool)
    for e in edges:
      keep[e.src, e.dst] = True
    ranks = np.where(keep, ranks, -1)
  return EdgeScores(ranks, sv, total, rtol, count, tokens)
