"""The T5 encoder's node graph, on which adapter placements are edges: numbering, edge kinds,
parsing and validation of edge lists, candidate grids, and the slot classes that fix the shape of
a routed model.

The search space of Nowak et al. 2024 ("Towards Optimal Adapter Placement for Efficient Transfer
Learning", arXiv 2410.15858), on this codebase's encoder. AdaLink is one point of it: a sequential
adapter at node 0. The adapters themselves are in `adalink.peft.placement`, their gradient-rank
scores in `adalink.peft.placement_scores`.

Nodes (an L-layer encoder has 2L+1 of them; `Encoder(node_hook=...)` visits them in order):
  0      the input embeddings as `T5.encode_embedded` receives them (before the input dropout);
  2l-1   the residual stream after layer l's attention residual add (l = 1..L);
  2l     the residual stream after layer l's MLP residual add (node 2L is before the final norm).

Edges. An adapter is an edge (i, j) carrying a low-rank map A whose output is added at node j. Its
kind follows from (i, j):
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

Slot classes. A routed model (see `adalink.peft.placement`) reads each slot's nodes at run time
(`routing_table`), so it depends on the edges only through each slot's class: forward (parallel
or long-range: it reads its source in the same pass and adds at a later node), recurrent (it reads
the first pass) or sequential (it maps its own node). `edge_set_shape` is that tuple, and
`canonical_order` sorts an edge set so that sets with the same numbers of each class have the
same shape.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

KINDS = ("sequential", "parallel", "long_range", "recurrent")
_KIND_ALIASES = {"long-range": "long_range", "longrange": "long_range"}


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


def routing_table(edges: Sequence[Edge]) -> np.ndarray:
  """The edges' (source, target) pairs as int32 [k, 2]: how a routed model receives its edges."""
  return np.asarray([[e.src, e.dst] for e in edges], np.int32).reshape(len(edges), 2)


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
# The order in which the slot classes are added at a node (see the module docstring), and so the
# order `canonical_order` sorts them in.
CLASS_ORDER = ("forward", "recurrent", "sequential")


def slot_class(edge: Edge) -> str:
  return SLOT_CLASSES[edge.kind]


def edge_set_shape(edges: Sequence[Edge]) -> Tuple[str, ...]:
  """What a compiled routed model depends on: each slot's class, in slot order. Edge sets of the
  same shape (after `canonical_order`) share one compiled step."""
  return tuple(slot_class(e) for e in edges)


def canonical_order(edges: Sequence[Edge]) -> List[Edge]:
  """The edges sorted by class (forward, recurrent, sequential), then source and target, so that
  sets with the same numbers of each class have the same shape."""
  return sorted(edges, key=lambda e: (CLASS_ORDER.index(slot_class(e)), e.src, e.dst))
