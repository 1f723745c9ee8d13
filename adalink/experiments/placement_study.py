"""The adapter placement study on the T5 encoder (arXiv 2410.15858): which single placement learns
best, does gradient rank at initialisation predict it, and where does AdaLink's node-0 placement
stand. `run_study(config, out)` runs it; configs/placement.py documents every field.

Stages:
  1. gradient rank at initialisation of every edge (i, j) over the grid's nodes, from one forward
     and backward pass per batch (`adalink.peft.placement.score_edges`);
  2. single-edge adapters for a subset of the edges (random, top-k by rank, or all), each trained
     for the same steps on the same batches from the same adapter init, then evaluated on the
     validation split; a few again from other inits, for the metric's seed-to-seed noise;
  3. Spearman(rank, metric), and the heatmaps and scatter plot (`placement_report`);
  4. random search over sets of k edges, against parallel adapters everywhere, AdaLink of rank
     k * r (equal parameters) and the top-k-by-rank set.

Every placement trains through the `placement` method (`method.edges`) with the trainer's step
(`adalink.train.step`) and optimizer (`adalink.train.optim`). Placements of the same shape (number
of edges, and whether a recurrent edge needs a second pass) share one compiled train step and one
compiled evaluation: the edges reach the model as a `placement_routing` array, not as constants of
the trace.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from adalink import config_fields as cf
from adalink.data.tasks import glue_spec
from adalink.experiments import placement_report as report
from adalink.models import t5
from adalink.peft import methods
from adalink.peft import placement as pl
from adalink.train import optim
from adalink.train import step as step_lib

SELECTIONS = ("random", "topk", "all")
PRIMARY = report.PRIMARY  # the metric placements are ranked by (lower is better)
BATCH_KEYS = (
  "encoder_input_tokens",
  "decoder_input_tokens",
  "decoder_target_tokens",
  "decoder_loss_weights",
)


# ----------------------------------------------------------------------------- setup and checks


@dataclasses.dataclass
class Setup:
  """What the config asks for, validated: the model, the candidate edges, how many to train."""

  model_config: t5.T5Config
  grid: List[pl.Edge]
  num_edges: int
  task_spec: Any  # glue_spec.GlueTaskSpec


def check_config(c) -> Setup:
  """Model config, candidate grid and validated settings; raises before any data or compile."""
  overrides = {"dropout_rate": float(c.model.dropout_rate)}
  if c.model.num_encoder_layers:
    overrides["num_encoder_layers"] = cf.positive_int(c, "model.num_encoder_layers")
  try:
    cfg = t5.get_config(c.model.size, **overrides)
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from None
  layers = cfg.num_encoder_layers
  n = pl.num_nodes(layers)
  nodes = tuple(c.grid.nodes) or tuple(range(n))
  for k in nodes:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n:
      raise ValueError(
        f"config.grid.nodes: node {k!r} is out of range for a {layers}-layer "
        f"encoder (nodes 0..{n - 1})"
      )
  grid = pl.grid_edges(nodes)
  # The method section is validated once here, with AdaLink's edge standing in for the edges.
  method = dict(c.method.to_dict())
  if method.get("name") != "placement":
    raise ValueError(f"config.method.name must be 'placement', got {method.get('name')!r}")
  methods.spec_from_config(
    {**method, "edges": [(0, 0, "sequential")]}, cfg.d_model, num_encoder_layers=layers
  )
  if c.train.selection not in SELECTIONS:
    raise ValueError(
      f"config.train.selection must be one of {SELECTIONS}, got {c.train.selection!r}"
    )
  num_edges = cf.positive_int(c, "train.num_edges")
  cf.positive_int(c, "train.num_steps")
  cf.positive_int(c, "score.num_batches")
  for field, value in (("score.rtol", c.score.rtol),) + tuple(
    (f"score.rtol_sweep[{i}]", v) for i, v in enumerate(c.score.rtol_sweep)
  ):
    if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
      raise ValueError(f"config.{field} must be in (0, 1), got {value!r}")
  k = cf.positive_int(c, "search.k")
  if k > len(grid):
    raise ValueError(f"config.search.k={k} exceeds the {len(grid)} edges of the grid")
  cf.positive_int(c, "search.num_trials")
  if k * c.method.rank > cfg.d_model:
    raise ValueError(
      f"config.search.k * config.method.rank = {k * c.method.rank} exceeds "
      f"d_model={cfg.d_model}: no AdaLink of equal parameter count exists"
    )
  try:
    spec = glue_spec.get_spec(c.data.task)
  except (KeyError, ValueError) as e:
    raise ValueError(f"config.data.task: {e}") from None
  if spec.is_regression:
    raise ValueError(
      f"config.data.task={c.data.task!r} is a regression task; the placement "
      "metrics (label loss, rank classification) need label words"
    )
  return Setup(cfg, grid, min(num_edges, len(grid)), spec)


# ----------------------------------------------------------------------------- data


@dataclasses.dataclass
class StudyData:
  train: List[Dict[str, np.ndarray]]  # the same batches, in the same order, for every placement
  val: List[Dict[str, np.ndarray]]  # padded to the compiled size; real rows marked by `valid`
  candidates: tuple  # (decoder inputs, targets) of each label word, one row per class
  num_val: int


def load_data(c, cfg: t5.T5Config, label_names: Sequence[str]) -> StudyData:
  """Train batches, validation batches and the label words as target token rows."""
  from adalink.data.pipeline import features
  from adalink.data.pipeline import vocab as vocab_lib
  from adalink.data.tasks import glue

  vocabulary = vocab_lib.get_vocabulary(c.model.vocab)
  if vocabulary.vocab_size > cfg.vocab_size:
    raise ValueError(
      f"config.model.vocab: {vocabulary.vocab_size} ids exceed the model's {cfg.vocab_size}"
    )
  data_dir = cf.existing_path(c, "data.data_dir")
  task = glue.get_glue_task(c.data.task, data_dir=data_dir, vocabulary=vocabulary)
  lengths = {"inputs": int(c.data.inputs_length), "targets": int(c.data.targets_length)}
  stream = features.make_batches(
    task, "train", lengths, int(c.data.batch_size), shuffle=True, seed=int(c.seed), repeat=True
  )
  n_train = max(int(c.train.num_steps), int(c.score.num_batches))
  train = [{k: v for k, v in next(stream).items() if k in BATCH_KEYS} for _ in range(n_train)]

  bs = int(c.eval.batch_size)
  limit = int(c.eval.max_examples or 0)
  val, seen = [], 0
  for batch in features.make_batches(
    task, "validation", lengths, bs, shuffle=False, repeat=False, passthrough=("label",)
  ):
    rows = len(batch["encoder_input_tokens"])
    if limit:
      rows = min(rows, limit - seen)
    pad = lambda x: np.concatenate([x[:rows], np.zeros((bs - rows,) + x.shape[1:], x.dtype)])
    b = {k: pad(np.asarray(batch[k])) for k in BATCH_KEYS}
    b["label"] = pad(np.asarray(batch["label"]).astype(np.int32))
    b["valid"] = np.arange(bs) < rows
    val.append(b)
    seen += rows
    if limit and seen >= limit:
      break

  cand = np.zeros((len(label_names), lengths["targets"]), np.int32)
  for i, name in enumerate(label_names):
    ids = list(vocabulary.encode(name)) + [vocab_lib.EOS_ID]
    if len(ids) > lengths["targets"]:
      raise ValueError(
        f"config.data.targets_length={lengths['targets']} is shorter than the label "
        f"{name!r} ({len(ids)} tokens with EOS)"
      )
    cand[i, : len(ids)] = ids
  cand_in = np.concatenate([np.zeros((len(label_names), 1), np.int32), cand[:, :-1]], 1)
  return StudyData(train, val, (cand_in, cand), seen)


# ----------------------------------------------------------------------------- train and evaluate


def make_eval_fn(model):
  """Sums over one validation batch: label-token loss, weights, token hits, exact matches, and
  rank-classification hits (the label word with the highest log-likelihood)."""

  def evaluate(trainable, frozen, batch, cand_in, cand_tgt):
    variables = methods.merge_variables(trainable, frozen)
    tokens = batch["encoder_input_tokens"]
    encoded, mask = model.apply(variables, tokens, method="encode_for_decoder")

    def token_logp(dec_in, dec_tgt):
      logits = model.apply(variables, encoded, mask, dec_in, dec_tgt, method="decode").astype(
        jnp.float32
      )
      logp = jax.nn.log_softmax(logits)
      return jnp.take_along_axis(logp, dec_tgt[..., None], -1)[..., 0], logits

    valid = batch["valid"]
    tgt, w = batch["decoder_target_tokens"], batch["decoder_loss_weights"]
    lp, logits = token_logp(batch["decoder_input_tokens"], tgt)
    hit = jnp.argmax(logits, -1) == tgt
    exact = jnp.all(hit | (w == 0), axis=1) & valid
    scores = []
    for c in range(cand_tgt.shape[0]):
      shape = tokens.shape[:1] + cand_tgt.shape[1:]
      c_tgt = jnp.broadcast_to(cand_tgt[c], shape)
      c_lp, _ = token_logp(jnp.broadcast_to(cand_in[c], shape), c_tgt)
      scores.append(jnp.sum(c_lp * (c_tgt > 0), axis=1))
    pred = jnp.argmax(jnp.stack(scores, 1), axis=1)
    return {
      "loss_sum": -jnp.sum(lp * w),
      "weight_sum": jnp.sum(w),
      "correct": jnp.sum(hit * w),
      "exact": jnp.sum(exact),
      "class_correct": jnp.sum((pred == batch["label"]) & valid),
      "rows": jnp.sum(valid),
    }

  return evaluate


def check_finite_losses(losses: np.ndarray) -> None:
  """A placement whose training diverged has no meaningful metric: stop the study there."""
  finite = np.isfinite(losses)
  if not np.all(finite):
    bad = int(np.argmin(finite)) + 1
    raise FloatingPointError(
      f"non-finite training loss at step {bad}: lower config.schedule.peak_lr"
    )


class Runner:
  """Trains and evaluates adapter sets; compiles once per (method, edge-set shape)."""

  def __init__(self, c, cfg: t5.T5Config, base_params, data: StudyData):
    self.c, self.cfg, self.base_params = c, cfg, base_params
    self.train = [{k: jnp.asarray(v) for k, v in b.items()} for b in data.train]
    self.val = [{k: jnp.asarray(v) for k, v in b.items()} for b in data.val]
    self.cand_in, self.cand_tgt = (jnp.asarray(x) for x in data.candidates)
    self._compiled: Dict[Any, Dict[str, Any]] = {}
    self.compiles = 0

  def _entry(self, key, method_cfg):
    if key not in self._compiled:
      spec = methods.spec_from_config(
        method_cfg, self.cfg.d_model, num_encoder_layers=self.cfg.num_encoder_layers
      )
      model = methods.build_model(self.cfg, spec)
      variables = methods.init_variables(
        model, jax.random.PRNGKey(int(self.c.seed) + 1), self.base_params
      )
      trainable, frozen = methods.split_variables(spec, variables)
      tx, _ = optim.make_optimizer(self.c.optimizer, self.c.schedule)
      self._compiled[key] = dict(
        spec=spec,
        model=model,
        trainable=trainable,
        frozen=frozen,
        tx=tx,
        step=jax.jit(step_lib.make_train_step(model, tx)),
        evaluate=jax.jit(make_eval_fn(model)),
      )
      self.compiles += 1
    return self._compiled[key]

  def run_edges(self, edges, routed: bool = True, init_seed: Optional[int] = None):
    """Trains one edge set -> (metrics, the edges in canonical order). `routed`: through the
    compiled step of its shape (sets of one shape share it); otherwise a model of its own (worth
    it for a set trained once). `init_seed`: adapter init other than the shared one (for the
    seed-to-seed noise estimate)."""
    edges = pl.canonical_order(edges)
    method = {**self.c.method.to_dict(), "edges": [list(e) for e in edges]}
    if not routed:
      return self.run_method(method), edges
    entry = self._entry(("placement",) + pl.edge_set_shape(edges), method)
    frozen = pl.routed_variables(entry["frozen"], entry["spec"].edges, edges)
    return self._run(entry, frozen, init_seed), edges

  def run_method(self, method_cfg) -> Dict[str, Any]:
    key = json.dumps(method_cfg, sort_keys=True, default=str)
    entry = self._entry(key, method_cfg)
    return self._run(entry, entry["frozen"])

  def _run(self, entry, frozen, init_seed: Optional[int] = None) -> Dict[str, Any]:
    t0 = time.time()
    trainable = entry["trainable"]
    if init_seed is not None:
      fresh = methods.init_variables(
        entry["model"], jax.random.PRNGKey(init_seed), self.base_params
      )
      trainable = methods.split_variables(entry["spec"], fresh)[0]
    opt_state = entry["tx"].init(trainable)
    rng = jax.random.PRNGKey(int(self.c.seed) + 2)
    losses = []
    for i in range(int(self.c.train.num_steps)):
      trainable, opt_state, m = entry["step"](
        trainable, opt_state, frozen, self.train[i], jax.random.fold_in(rng, i)
      )
      losses.append(m["loss"])
    losses = np.asarray(jax.device_get(losses), np.float64)
    check_finite_losses(losses)
    sums = None
    for b in self.val:
      out = jax.device_get(entry["evaluate"](trainable, frozen, b, self.cand_in, self.cand_tgt))
      sums = out if sums is None else {k: sums[k] + out[k] for k in sums}
    rows = float(sums["rows"])
    tail = max(1, len(losses) // 10)
    return {
      "val_loss": float(sums["loss_sum"] / sums["weight_sum"]),
      "token_acc": float(sums["correct"] / sums["weight_sum"]),
      "exact_match": float(sums["exact"] / rows),
      "class_acc": float(sums["class_correct"] / rows),
      "train_loss_first": float(losses[0]),
      "train_loss_last": float(losses[-tail:].mean()),
      "params": methods.count_params(trainable),
      "seconds": round(time.time() - t0, 2),
    }


# ----------------------------------------------------------------------------- the stages


def _by_rank(grid, scores, fro):
  return sorted(grid, key=lambda e: (-scores.rank(e), -fro[e.src, e.dst]))


def choose_edges(c, grid, num_edges: int, scores, fro, rs: np.random.RandomState) -> List[pl.Edge]:
  """The single edges to train (config.train.selection); AdaLink's (0, 0) is always among
  them, to see where it stands."""
  if c.train.selection == "all":
    chosen = list(grid)
  elif c.train.selection == "topk":
    chosen = _by_rank(grid, scores, fro)[:num_edges]
  else:
    chosen = [grid[i] for i in sorted(rs.choice(len(grid), num_edges, replace=False))]
  adalink_edge = pl.Edge(0, 0, "sequential")
  if adalink_edge in grid and adalink_edge not in chosen:
    chosen.insert(0, adalink_edge)
  return chosen


def train_single_edges(c, runner: Runner, chosen, scores, fro, log) -> List[Dict[str, Any]]:
  singles = []
  for idx, e in enumerate(chosen):
    res, _ = runner.run_edges([e])
    res.update(
      edge=[e.src, e.dst], kind=e.kind, rank=scores.rank(e), grad_fro_norm=float(fro[e.src, e.dst])
    )
    singles.append(res)
    log(
      f"[2] {idx + 1:2d}/{len(chosen)} edge ({e.src},{e.dst}) {e.kind:10s} rank "
      f"{res['rank']:2d}  val_loss {res['val_loss']:.4f}  class_acc {res['class_acc']:.3f}  "
      f"exact {res['exact_match']:.3f}  ({res['seconds']:.1f}s)"
    )
  return singles


def seed_noise(c, runner: Runner, chosen, singles, log) -> Dict[str, Any]:
  """Seed-to-seed noise of the metric: the first few chosen edges again from other adapter
  inits; -> {"runs": [...], "pooled_std": ...}."""
  noise = []
  for e in chosen[: int(c.train.noise_edges)]:
    vals = [next(s for s in singles if s["edge"] == [e.src, e.dst])[PRIMARY]]
    for extra in range(1, int(c.train.noise_seeds) + 1):
      vals.append(runner.run_edges([e], init_seed=int(c.seed) + 100 + extra)[0][PRIMARY])
    noise.append({"edge": [e.src, e.dst], PRIMARY: vals, "std": float(np.std(vals, ddof=1))})
  pooled = float(np.sqrt(np.mean([n["std"] ** 2 for n in noise]))) if noise else None
  if noise:
    log(
      f"[2] seed-to-seed std of {PRIMARY} (adapter init, {1 + int(c.train.noise_seeds)} "
      f"seeds, edges {[tuple(n['edge']) for n in noise]}): {pooled:.4f}; spread over "
      f"single edges: {min(s[PRIMARY] for s in singles):.4f} .. "
      f"{max(s[PRIMARY] for s in singles):.4f}"
    )
  return {"runs": noise, "pooled_std": pooled}


def random_search(c, runner: Runner, grid, scores, fro, rs, log) -> Dict[str, Any]:
  """Random k-edge sets, and the references: the top-k edges by rank, parallel adapters
  everywhere, and AdaLink with the k-edge set's parameter count."""
  k = int(c.search.k)
  trials = []
  for t in range(int(c.search.num_trials)):
    picked = [grid[i] for i in sorted(rs.choice(len(grid), k, replace=False))]
    res, picked = runner.run_edges(picked)
    res.update(edges=[[e.src, e.dst, e.kind] for e in picked])
    trials.append(res)
    log(
      f"[4] trial {t + 1}/{c.search.num_trials} {[(e.src, e.dst) for e in picked]} val_loss "
      f"{res['val_loss']:.4f} class_acc {res['class_acc']:.3f} ({res['seconds']:.1f}s)"
    )
  topk_res, top = runner.run_edges(_by_rank(grid, scores, fro)[:k], routed=False)
  topk_res.update(edges=[[e.src, e.dst, e.kind] for e in top])
  every_res, every = runner.run_edges(pl.everywhere_edges(runner.cfg.num_encoder_layers), False)
  every_res.update(edges=[[e.src, e.dst, e.kind] for e in every])
  adalink_rank = k * int(c.method.rank)
  adalink_res = runner.run_method(
    {
      "name": "adalink",
      "rank": adalink_rank,
      "activation": c.method.activation,
      "dropout_rate": float(c.method.dropout_rate),
    }
  )
  adalink_res.update(edges=[[0, 0, "sequential"]], rank=adalink_rank)
  return {
    "k": k,
    "trials": trials,
    "best": min(trials, key=lambda r: r[PRIMARY]),
    "topk_by_rank": topk_res,
    "everywhere": every_res,
    "adalink_equal_budget": adalink_res,
  }


def correlations(singles, ranks_by_rtol) -> Dict[str, Any]:
  neg_loss = [-s[PRIMARY] for s in singles]
  ranks = [s["rank"] for s in singles]
  return {
    "rank_vs_neg_val_loss": report.spearman(ranks, neg_loss),
    "rank_vs_class_acc": report.spearman(ranks, [s["class_acc"] for s in singles]),
    "grad_fro_norm_vs_neg_val_loss": report.spearman(
      [s["grad_fro_norm"] for s in singles], neg_loss
    ),
    "rank_vs_neg_val_loss_by_rtol": {
      k: report.spearman([int(r[s["edge"][0], s["edge"][1]]) for s in singles], neg_loss)
      for k, r in ranks_by_rtol.items()
    },
  }


# ----------------------------------------------------------------------------- the study


def _print(text: str) -> None:
  print(text, flush=True)  # progress of a long CPU run, shown as it happens


def run_study(c, out: str, log: Callable[[str], None] = _print) -> Dict[str, Any]:
  """Runs the study of config `c` (configs/placement.py), writing placement.json and the figures
  into `out`; -> the placement.json record. Every config error is raised before any work."""
  t_start = time.time()
  setup = check_config(c)
  cfg, grid = setup.model_config, setup.grid
  os.makedirs(out, exist_ok=True)
  n = pl.num_nodes(cfg.num_encoder_layers)
  nodes = sorted({e.src for e in grid})
  log(
    f"model: tiny T5, {cfg.num_encoder_layers} encoder layers -> {n} nodes, d_model "
    f"{cfg.d_model}; grid nodes {nodes} -> {len(grid)} candidate edges; task {c.data.task}"
  )
  data = load_data(c, cfg, setup.task_spec.label_names)
  base_params = t5.init_params(cfg, jax.random.PRNGKey(int(c.model.init_seed)))
  log(
    f"data: {len(data.train)} train batches of {c.data.batch_size}, {data.num_val} validation "
    f"examples ({time.time() - t_start:.0f}s)"
  )

  # (1) gradient rank of every grid edge
  t0 = time.time()
  scores = pl.score_edges(
    cfg,
    base_params,
    iter(data.train),
    int(c.score.num_batches),
    float(c.score.rtol),
    grid,
    loss_fn=step_lib.cross_entropy,  # the training loss: rank what training will follow
  )
  t_score = time.time() - t0
  fro = np.linalg.norm(scores.products, axis=(-2, -1))
  ranks_by_rtol = {
    f"{rtol:g}": pl.ranks_from_products(scores.products, float(rtol))[0]
    for rtol in c.score.rtol_sweep
  }
  log(
    f"[1] scored {len(grid)} edges over {scores.num_batches} batches ({scores.num_tokens} "
    f"tokens) in {t_score:.1f}s; rank at rtol={scores.rtol:g}: min "
    f"{min(scores.rank(e) for e in grid)}, max {max(scores.rank(e) for e in grid)} "
    f"(of {cfg.d_model})"
  )

  # (2) single-edge adapters, and the metric's seed-to-seed noise
  t0 = time.time()
  rs = np.random.RandomState(int(c.seed))
  chosen = choose_edges(c, grid, setup.num_edges, scores, fro, rs)
  runner = Runner(c, cfg, base_params, data)
  singles = train_single_edges(c, runner, chosen, scores, fro, log)
  noise = seed_noise(c, runner, chosen, singles, log)
  by_metric = sorted(singles, key=lambda s: s[PRIMARY])
  single_00 = next((s for s in singles if s["edge"] == [0, 0]), None)
  if single_00 is not None:
    log(
      f"[2] AdaLink's edge (0,0): {PRIMARY} {single_00[PRIMARY]:.4f}, "
      f"{by_metric.index(single_00) + 1} of {len(singles)} single edges; best "
      f"{tuple(by_metric[0]['edge'])} {by_metric[0][PRIMARY]:.4f}"
    )
  t_single = time.time() - t0

  # (3) correlation and figures
  corr = correlations(singles, ranks_by_rtol)
  rank_m = np.full((n, n), np.nan)
  for e in grid:
    rank_m[e.src, e.dst] = scores.rank(e)
  rho_text = report.write_figures(c, out, cfg, scores, rank_m, singles, corr)
  log(f"[3] {rho_text}")
  log(report.correlation_lines(corr))

  # (4) random search with a budget of k adapters, and the references
  t0 = time.time()
  search = random_search(c, runner, grid, scores, fro, rs, log)
  search["adalink_single_edge"] = single_00
  t_search = time.time() - t0
  log(report.search_table(c, search, single_00, data.num_val))

  result = {
    "config": json.loads(c.to_json()),
    "model": {
      "num_encoder_layers": cfg.num_encoder_layers,
      "d_model": cfg.d_model,
      "num_nodes": n,
      "node_labels": [pl.node_label(i) for i in range(n)],
      "init": "random (seed config.model.init_seed)",
    },
    "metric": report.metric_record(data.num_val),
    "score": report.score_record(scores, grid, nodes, rank_m, ranks_by_rtol, fro),
    "single_edges": {
      "selection": c.train.selection,
      "results": singles,
      "order_by_" + PRIMARY: [s["edge"] for s in by_metric],
      "adalink_place": (by_metric.index(single_00) + 1 if single_00 is not None else None),
      "seed_noise": noise,
    },
    "spearman": corr,
    "search": search,
    "timing_seconds": {
      "score": round(t_score, 1),
      "single_edges": round(t_single, 1),
      "search": round(t_search, 1),
      "total": round(time.time() - t_start, 1),
    },
    "compiled_step_variants": runner.compiles,
  }
  path = os.path.join(out, "placement.json")
  with open(path, "w") as f:
    json.dump(result, f, indent=1, allow_nan=False)
  log(
    f"\nwrote {path}, rank_heatmap.png, metric_heatmap.png, rank_vs_metric.png in {out}; "
    f"{runner.compiles} compiled step variants; total {time.time() - t_start:.0f}s"
  )
  return result
