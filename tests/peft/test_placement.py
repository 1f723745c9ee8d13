"""Adapter placement on a tiny T5: AdaLink as edge (0, 0), identity at init for every kind, routed
edges equal static ones, probe gradient ranks equal per-edge jax.grad ranks, config errors, and a
train step that moves only the edge adapters."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from adalink.models import layers, t5
from adalink.peft import methods
from adalink.peft import placement as pl
from adalink.peft import placement_graph as graph
from adalink.peft import placement_scores
from adalink.train import step as step_lib
from tests.peft import batches

CFG = t5.get_config("tiny", dropout_rate=0.0)  # 2 encoder layers -> 5 nodes
D = CFG.d_model
L = CFG.num_encoder_layers
ONE_OF_EACH = {"sequential": (2, 2), "parallel": (1, 2), "long_range": (0, 3), "recurrent": (4, 1)}


def _batch(seed=0, b=4, lin=9, ltgt=5, lengths=None):
  return batches.text_batch(
    CFG.vocab_size, seed, b, lin, ltgt, input_lengths=lengths, padded_target_row=-1
  )


@pytest.fixture(scope="module")
def base_params():
  return t5.init_params(CFG, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def base_logits(base_params):
  return t5.T5(CFG).apply({"params": base_params}, **step_lib.model_inputs(_batch()))


def _build(method_cfg, base_params, seed=1):
  spec = methods.spec_from_config(method_cfg, D, num_encoder_layers=L)
  model = methods.build_model(CFG, spec)
  return spec, model, methods.init_variables(model, jax.random.PRNGKey(seed), base_params)


def _placement(edges, rank=4, **kw):
  return {"name": "placement", "rank": rank, "edges": edges, "dropout_rate": 0.0, **kw}


def _randomise(tree, seed, scale=0.3):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return treedef.unflatten(
    [scale * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
  )


def _max_diff(a, b):
  return float(jnp.max(jnp.abs(jnp.asarray(a, jnp.float32) - jnp.asarray(b, jnp.float32))))


def test_node_graph_numbering_and_kinds(base_params):
  grid = graph.grid_edges(range(graph.num_nodes(L)))
  counts = {k: sum(e.kind == k for e in grid) for k in graph.KINDS}
  assert counts == {"sequential": 5, "parallel": 4, "long_range": 6, "recurrent": 10}
  # The hook visits nodes 0..2L in order; node 2L, through the final norm, is the encoder output.
  seen, states = [], []

  def hook(k, h):
    seen.append(k)
    states.append(h)
    return h

  b = _batch()
  model = t5.T5(CFG)
  mask = b["encoder_input_tokens"] != 0
  emb = model.apply({"params": base_params}, b["encoder_input_tokens"], method="embed")
  hooked = model.apply({"params": base_params}, emb, mask, node_hook=hook, method="encode_embedded")
  plain = model.apply({"params": base_params}, emb, mask, method="encode_embedded")
  assert seen == list(range(2 * L + 1))
  np.testing.assert_array_equal(np.asarray(hooked), np.asarray(plain))
  np.testing.assert_array_equal(np.asarray(states[0]), np.asarray(emb))
  final = layers.RMSNorm(CFG.layer_norm_epsilon).apply(
    {"params": base_params["encoder"]["encoder_norm"]}, states[-1]
  )
  np.testing.assert_array_equal(np.asarray(final), np.asarray(plain))


@pytest.mark.parametrize("routed", [False, True])
def test_edge_00_sequential_equals_adalink(routed, base_params):
  _, ada_model, ada_vars = _build({"name": "adalink", "rank": 4, "dropout_rate": 0.0}, base_params)
  ada_vars["adapters"] = _randomise(ada_vars["adapters"], seed=3)
  node = ada_vars["adapters"]["adalink"]["text"]
  spec, model, variables = _build(_placement([(0, 0, "sequential")]), base_params)
  variables["adapters"] = {"placement": {"edge_0": {"down": node["down"][0], "up": node["up"][0]}}}
  if routed:
    variables = pl.routed_variables(variables, spec.edges, spec.edges)
  b = step_lib.model_inputs(_batch())
  want = ada_model.apply(ada_vars, **b)
  got = model.apply(variables, **b)
  assert _max_diff(got, want) <= 1e-6
  base = t5.T5(CFG).apply({"params": base_params}, **b)
  assert _max_diff(want, base) > 1e-2, "the randomised AdaLink must change the logits"


@pytest.mark.parametrize("kind", graph.KINDS)
def test_every_kind_starts_as_identity(kind, base_params, base_logits):
  edge = ONE_OF_EACH[kind]
  spec, model, variables = _build(_placement([edge + (kind,)]), base_params)
  assert spec.edges[0].kind == kind
  b = step_lib.model_inputs(_batch())
  np.testing.assert_array_equal(np.asarray(model.apply(variables, **b)), np.asarray(base_logits))
  # Not vacuous: the same edge with a non-zero up-projection changes the logits.
  variables["adapters"] = _randomise(variables["adapters"], seed=4)
  apply = jax.jit(lambda v: model.apply(v, **b))
  static = apply(variables)
  assert _max_diff(static, base_logits) > 1e-3
  # The routed form of a single edge is the static one bit for bit.
  routed = apply(pl.routed_variables(variables, spec.edges, spec.edges))
  np.testing.assert_array_equal(np.asarray(routed), np.asarray(static))


def test_routed_edges_equal_static_edges_and_share_one_step(base_params):
  # Two forward edges into node 3, a recurrent and a sequential one (canonical slot order).
  edges = graph.canonical_order(graph.parse_edges([(0, 0), (1, 3), (4, 1), (2, 3)]))
  spec, model, variables = _build(_placement(list(edges)), base_params)
  variables["adapters"] = _randomise(variables["adapters"], seed=5)
  b = step_lib.model_inputs(_batch())
  apply = jax.jit(lambda v: model.apply(v, **b))
  static = apply(variables)
  # Equal up to the order of the two float additions into node 3 (a few ulp of logits ~2).
  assert _max_diff(apply(pl.routed_variables(variables, spec.edges, spec.edges)), static) <= 1e-5
  # Another placement of the same shape through the same traced model equals its own static model.
  other = graph.canonical_order(graph.parse_edges([(3, 3), (0, 4), (2, 0), (1, 2)]))
  assert graph.edge_set_shape(other) == graph.edge_set_shape(spec.edges)
  _, other_model, other_vars = _build(_placement(list(other)), base_params)
  other_vars["adapters"] = variables["adapters"]
  want = jax.jit(lambda v: other_model.apply(v, **b))(other_vars)
  got = apply(pl.routed_variables(variables, spec.edges, other))
  assert _max_diff(got, want) <= 1e-6 and _max_diff(got, static) > 1e-3
  with pytest.raises(
    ValueError,
    match=r"cannot route edges \[\(2, 1, 'recurrent'\)\] \(slot "
    r"classes \[recurrent\]\) through a model built for "
    r"\[\(0, 1, 'parallel'\)\] \(slot classes \[forward\]\)",
  ):
    pl.routed_variables(variables, graph.parse_edges([(0, 1)]), graph.parse_edges([(2, 1)]))


def test_gradient_rank_matches_direct_per_edge_grad(base_params):
  # Few tokens (rank <= tokens < d) so the ranks are informative, over two accumulated batches.
  batches = [_batch(seed=1, b=2, lin=8, lengths=[7, 5]), _batch(seed=2, b=2, lin=8, lengths=[6, 3])]
  grid = graph.grid_edges(range(graph.num_nodes(L)))
  scores = placement_scores.score_edges(
    CFG, base_params, iter(batches), num_batches=2, loss_fn=step_lib.cross_entropy
  )

  # Direct: for each edge its own model with a full-rank d x d linear map M (an adapter of rank d
  # with W_down = I, so M = W_up, zero at init), jax.grad of the training loss w.r.t. M.
  grads = {}
  for template in ([(0, 0)], [(0, 1)], [(1, 0)]):  # one model per slot class
    spec, model, variables = _build(_placement(template, rank=D), base_params)
    variables["adapters"]["placement"]["edge_0"]["down"] = jnp.eye(D)
    trainable, frozen = methods.split_variables(spec, variables)
    grad_fn = jax.jit(jax.grad(lambda t, f, b: step_lib.loss_fn(model, t, f, b, None, True)[0]))
    for e in grid:
      if graph.edge_set_shape([e]) != graph.edge_set_shape(spec.edges):
        continue
      routed = pl.routed_variables(frozen, spec.edges, [e])
      up_grad = lambda b: grad_fn(trainable, routed, b)[layers.ADAPTERS]["placement"]["edge_0"][
        "up"
      ]
      grads[e] = sum(np.asarray(up_grad(b), np.float64) for b in batches)
  assert len(grads) == len(grid)
  ids = np.concatenate([np.asarray(b["encoder_input_tokens"]).ravel() for b in batches])
  tokens, distinct = int(np.sum(ids != 0)), len(np.unique(ids[ids != 0]))
  assert distinct < tokens < D  # repeated token ids: node 0 (embeddings) has fewer directions
  for e, g in grads.items():
    top = np.linalg.norm(g, 2)
    np.testing.assert_allclose(scores.products[e.src, e.dst], g, rtol=0, atol=1e-5 * top)
    direct = int(np.linalg.matrix_rank(g, tol=placement_scores.DEFAULT_RTOL * top))
    assert scores.rank(e) == direct, (e, scores.rank(e), direct)
    # G = H_i^T G_j over the batches' tokens: rank = tokens, or the distinct embeddings at node 0.
    assert direct == (distinct if e.src == 0 else tokens), (e, direct)


@pytest.mark.parametrize(
  "edges, layers_known, message",
  [
    (
      [(0, 5)],
      True,
      r"method.edges\[0\] = \(0, 5, 'long_range'\): node 5 is out of range for "
      r"a 2-layer encoder \(nodes 0..4\)",
    ),
    (
      [(0, 0), "1:9:long_range"],
      True,
      r"method.edges\[1\] = \(1, 9, 'long_range'\): node 9 is "
      r"out of range",
    ),
    ([(0, 1, "skip")], True, r"method.edges\[0\] = \(0, 1, 'skip'\): unknown kind 'skip'"),
    (
      [(0, 2, "parallel")],
      True,
      r"kind 'parallel' does not match \(0, 2\), which is a "
      r"long_range edge",
    ),
    ([(3, 1, "sequential")], True, r"does not match \(3, 1\), which is a recurrent edge"),
    ([(1, 1), (1, 1, "sequential")], True, r"method.edges\[1\] .*duplicate of method.edges\[0\]"),
    ([(-1, 0)], True, r"the source node must be >= 0, got -1"),
    ([(0.5, 1)], True, r"the source node must be an integer, got 0.5"),
    ([], True, r"method.edges is empty"),
    (None, True, r"method.edges is missing"),
    ([(0, 7)], False, r"method.edges\[0\] = \(0, 7, 'long_range'\): node 7 is out of range"),
  ],
)
def test_bad_edge_configs_fail_before_compilation(edges, layers_known, message, monkeypatch):
  monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled"))
  monkeypatch.setattr(jax, "eval_shape", lambda *a, **k: pytest.fail("traced"))
  cfg = {"name": "placement", "rank": 4}
  if edges is not None:
    cfg["edges"] = edges
  with pytest.raises(ValueError, match=message):
    spec = methods.spec_from_config(cfg, D, num_encoder_layers=L if layers_known else None)
    # Without the layer count the spec is accepted; the model builder checks the nodes.
    methods.build_model(CFG, spec)


def test_train_step_moves_only_edge_adapters(base_params):
  spec, model, variables = _build(_placement([(0, 0), (1, 2), (0, 3), (4, 1)]), base_params)
  variables = pl.routed_variables(variables, spec.edges, spec.edges)
  trainable, frozen = methods.split_variables(spec, variables)
  assert set(trainable) == {layers.ADAPTERS} and pl.ROUTING in frozen
  optimizer = optax.adafactor(1e-2)
  opt_state = optimizer.init(trainable)
  step = jax.jit(step_lib.make_train_step(model, optimizer))
  new = trainable
  for i in range(3):
    new, opt_state, metrics = step(new, opt_state, frozen, _batch(seed=i), jax.random.PRNGKey(i))
  assert np.isfinite(float(metrics["loss"]))
  after = methods.merge_variables(new, frozen)
  flat = lambda v: {(c,) + p: x for c in v for p, x in traverse_util.flatten_dict(v[c]).items()}
  before, now = flat(variables), flat(after)
  assert before.keys() == now.keys()
  moved = {p for p in before if not np.array_equal(np.asarray(before[p]), np.asarray(now[p]))}
  want = {(layers.ADAPTERS, "placement", f"edge_{s}", w) for s in range(4) for w in ("down", "up")}
  assert moved == want
