#!/usr/bin/env python
r"""Adapter placement search on the T5 encoder: which single placement learns best, does gradient
rank predict it, and where does AdaLink's node-0 placement stand (arXiv 2410.15858).

  python scripts/placement.py --config=configs/placement.py:sst2 --out=/tmp/placement
  python scripts/placement.py --config=configs/placement.py:smoke --out=/tmp/placement_smoke

Steps (configs/placement.py documents every field):
  1. gradient rank at initialisation of every edge (i, j) over the grid's nodes, from one forward
     and backward pass per batch (`adalink.peft.placement.score_edges`);
  2. single-edge adapters for a subset of the edges (random, top-k by rank, or all), each trained
     for the same steps on the same batches from the same adapter init, then evaluated on the
     validation split;
  3. OUT/placement.json, OUT/rank_heatmap.png and OUT/metric_heatmap.png (rows = source node,
     columns = target node), OUT/rank_vs_metric.png, and Spearman(rank, metric) printed;
  4. random search over sets of k edges, against parallel adapters everywhere and against AdaLink
     of rank k * r (equal parameters), plus the top-k-by-rank set; a table is printed.

Every placement is trained through the `placement` method (`method.edges`) with the train step of
`adalink.train.step`. Placements of the same shape (number of edges, and whether a recurrent edge
needs a second pass) share one compiled train step and one compiled evaluation: the edges reach
the model as a `placement_routing` array, not as constants of the trace.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "e.g. configs/placement.py:sst2", lock_config=True)
flags.DEFINE_string("out", None, "Output folder for placement.json and the figures.")
flags.mark_flags_as_required(["config", "out"])

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "adalink")
SELECTIONS = ("random", "topk", "all")
PRIMARY = "val_loss"


def _resolve(path: str) -> str:
  return os.path.abspath(os.path.expanduser(path.replace("{package}", PACKAGE_DIR)))


def _positive_int(value, field: str) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ValueError(f"config.{field} must be a positive integer, got {value!r}")
  return value


# ----------------------------------------------------------------------------- setup and checks


def build_setup(c):
  """Model config, candidate grid and validated settings; raises before any data or compile."""
  from adalink.data.tasks import glue_spec
  from adalink.models import t5
  from adalink.peft import methods
  from adalink.peft import placement as pl

  overrides = {"dropout_rate": float(c.model.dropout_rate)}
  if c.model.num_encoder_layers:
    overrides["num_encoder_layers"] = _positive_int(
      c.model.num_encoder_layers, "model.num_encoder_layers"
    )
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
  num_edges = _positive_int(c.train.num_edges, "train.num_edges")
  _positive_int(c.train.num_steps, "train.num_steps")
  _positive_int(c.score.num_batches, "score.num_batches")
  for field, value in (("score.rtol", c.score.rtol),) + tuple(
    (f"score.rtol_sweep[{i}]", v) for i, v in enumerate(c.score.rtol_sweep)
  ):
    if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
      raise ValueError(f"config.{field} must be in (0, 1), got {value!r}")
  k = _positive_int(c.search.k, "search.k")
  if k > len(grid):
    raise ValueError(f"config.search.k={k} exceeds the {len(grid)} edges of the grid")
  _positive_int(c.search.num_trials, "search.num_trials")
  if k * c.method.rank > cfg.d_model:
    raise ValueError(
      f"config.search.k * config.method.rank = {k * c.method.rank} exceeds "
      f"d_model={cfg.d_model}: no AdaLink of equal parameter count exists"
    )
  spec = glue_spec.get_spec(c.data.task)
  if spec.is_regression:
    raise ValueError(
      f"config.data.task={c.data.task!r} is a regression task; the placement "
      "metrics (label loss, rank classification) need label words"
    )
  return cfg, grid, min(num_edges, len(grid)), spec


def load_data(c, cfg, label_names):
  """Train batches (the same list for every placement), validation batches (the last one padded
  to the compiled size, rows marked by `valid`) and the label words as target token rows."""
  import numpy as np
  from adalink.data.pipeline import features, vocab as vocab_lib
  from adalink.data.tasks import glue

  vocabulary = vocab_lib.get_vocabulary(c.model.vocab)
  if vocabulary.vocab_size > cfg.vocab_size:
    raise ValueError(
      f"config.model.vocab: {vocabulary.vocab_size} ids exceed the model's {cfg.vocab_size}"
    )
  data_dir = _resolve(c.data.data_dir)
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f"config.data.data_dir: no such directory: {data_dir}")
  task = glue.get_glue_task(c.data.task, data_dir=data_dir, vocabulary=vocabulary)
  lengths = {"inputs": int(c.data.inputs_length), "targets": int(c.data.targets_length)}
  keep = (
    "encoder_input_tokens",
    "decoder_input_tokens",
    "decoder_target_tokens",
    "decoder_loss_weights",
  )
  stream = features.make_batches(
    task, "train", lengths, int(c.data.batch_size), shuffle=True, seed=int(c.seed), repeat=True
  )
  n_train = max(int(c.train.num_steps), int(c.score.num_batches))
  train = [{k: v for k, v in next(stream).items() if k in keep} for _ in range(n_train)]

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
    b = {k: pad(np.asarray(batch[k])) for k in keep}
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
  return train, val, (cand_in, cand), seen


# ----------------------------------------------------------------------------- train and evaluate


def make_eval_fn(model):
  """Sums over one validation batch: label-token loss, weights, token hits, exact matches, and
  rank-classification hits (the label word with the highest log-likelihood)."""
  import jax
  import jax.numpy as jnp
  from adalink.peft import methods

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


class Runner:
  """Trains and evaluates adapter sets; compiles once per (method, edge-set shape)."""

  def __init__(self, c, cfg, base_params, train, val, candidates):
    import jax.numpy as jnp

    self.c, self.cfg, self.base_params = c, cfg, base_params
    self.train = [{k: jnp.asarray(v) for k, v in b.items()} for b in train]
    self.val = [{k: jnp.asarray(v) for k, v in b.items()} for b in val]
    self.cand_in, self.cand_tgt = (jnp.asarray(x) for x in candidates)
    self._compiled = {}
    self.compiles = 0

  def _entry(self, key, method_cfg):
    import jax
    from adalink.peft import methods
    from adalink.train import optim, step as step_lib

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

  def run_edges(self, edges, routed: bool = True, init_seed=None):
    """Trains one edge set. `routed`: through the compiled step of its shape (sets of one shape
    share it); otherwise a model of its own (worth it for a set trained once). `init_seed`:
    adapter init other than the shared one (for the seed-to-seed noise estimate)."""
    from adalink.peft import placement as pl

    edges = pl.canonical_order(edges)
    method = {**self.c.method.to_dict(), "edges": [list(e) for e in edges]}
    if not routed:
      return self.run_method(method), edges
    entry = self._entry(("placement",) + pl.edge_set_shape(edges), method)
    frozen = pl.routed_variables(entry["frozen"], entry["spec"].edges, edges)
    return self._run(entry, frozen, init_seed), edges

  def run_method(self, method_cfg):
    key = json.dumps(method_cfg, sort_keys=True, default=str)
    entry = self._entry(key, method_cfg)
    return self._run(entry, entry["frozen"])

  def _run(self, entry, frozen, init_seed=None):
    import jax
    import numpy as np
    from adalink.peft import methods

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
    if not np.all(np.isfinite(losses)):
      bad = int(np.argmin(np.isfinite(losses))) + 1
      raise FloatingPointError(
        f"non-finite training loss at step {bad}: lower config.schedule.peak_lr"
      )
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


# ----------------------------------------------------------------------------- analysis and output


def spearman(x, y):
  import numpy as np
  from scipy import stats

  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) < 3:
    return {"rho": None, "p": None, "n": int(len(x)), "note": "fewer than 3 points"}
  if np.all(x == x[0]) or np.all(y == y[0]):
    return {"rho": None, "p": None, "n": int(len(x)), "note": "constant input: undefined"}
  res = stats.spearmanr(x, y)
  return {"rho": float(res.statistic), "p": float(res.pvalue), "n": int(len(x))}


def heatmap(path, matrix, title, cbar, fmt, cmap, highlight=None):
  """An n x n matrix (rows = source node, columns = target node); NaN cells (not scored / not
  trained) are grey."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  from adalink.peft import placement as pl

  n = matrix.shape[0]
  fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.6 + 0.7 * n))
  masked = np.ma.masked_invalid(matrix)
  cm = matplotlib.colormaps[cmap].copy()
  cm.set_bad("#dddddd")
  im = ax.imshow(masked, cmap=cm)
  labels = [f"{k}\n{pl.node_label(k)}" for k in range(n)]
  ax.set_xticks(range(n), labels, fontsize=7)
  ax.set_yticks(range(n), [l.replace("\n", " ") for l in labels], fontsize=7)
  ax.set_xlabel("target node j (adapter output added here)")
  ax.set_ylabel("source node i (adapter input)")
  finite = matrix[np.isfinite(matrix)]
  mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
  for i in range(n):
    for j in range(n):
      if np.isfinite(matrix[i, j]):
        v = matrix[i, j]
        light = (v < mid) == (cmap.endswith("_r"))
        ax.text(
          j,
          i,
          fmt.format(v),
          ha="center",
          va="center",
          fontsize=7,
          color="black" if light else "white",
        )
  if highlight is not None:
    i, j = highlight
    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
  ax.set_title(title, fontsize=9)
  fig.colorbar(im, ax=ax, label=cbar, shrink=0.8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def scatter(path, singles, rho_text, rtol):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  colors = {
    "sequential": "tab:blue",
    "parallel": "tab:orange",
    "long_range": "tab:green",
    "recurrent": "tab:red",
  }
  fig, ax = plt.subplots(figsize=(6, 4.2))
  for kind, color in colors.items():
    pts = [s for s in singles if s["kind"] == kind]
    if pts:
      ax.scatter([s["rank"] for s in pts], [s[PRIMARY] for s in pts], c=color, label=kind, s=28)
  for s in singles:
    ax.annotate(
      f"{s['edge'][0]},{s['edge'][1]}",
      (s["rank"], s[PRIMARY]),
      fontsize=6,
      xytext=(3, 2),
      textcoords="offset points",
    )
  ax.set_xlabel(f"gradient rank at init (rtol={rtol:g})")
  ax.set_ylabel("validation label loss (lower is better)")
  ax.set_title(rho_text, fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def matrix_json(m):
  """A float matrix as nested lists with None where a cell is NaN (strict JSON)."""
  import numpy as np

  return [[None if not np.isfinite(v) else float(v) for v in row] for row in np.asarray(m, float)]


def fmt_rho(s):
  return (
    "undefined (" + s["note"] + ")"
    if s["rho"] is None
    else f"{s['rho']:+.3f} (p={s['p']:.3g}, n={s['n']})"
  )


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  c = flags.FLAGS.config
  out = flags.FLAGS.out
  t_start = time.time()
  cfg, grid, num_edges, task_spec = build_setup(c)  # every config error before any work

  import jax
  import numpy as np
  from adalink.models import t5
  from adalink.peft import placement as pl

  os.makedirs(out, exist_ok=True)
  n = pl.num_nodes(cfg.num_encoder_layers)
  nodes = sorted({e.src for e in grid})
  print(
    f"model: tiny T5, {cfg.num_encoder_layers} encoder layers -> {n} nodes, d_model "
    f"{cfg.d_model}; grid nodes {nodes} -> {len(grid)} candidate edges; task {c.data.task}",
    flush=True,
  )
  train, val, candidates, n_val = load_data(c, cfg, task_spec.label_names)
  base_params = t5.init_params(cfg, jax.random.PRNGKey(int(c.model.init_seed)))
  print(
    f"data: {len(train)} train batches of {c.data.batch_size}, {n_val} validation examples "
    f"({time.time() - t_start:.0f}s)",
    flush=True,
  )

  # (1) gradient rank of every grid edge
  t0 = time.time()
  scores = pl.score_edges(
    cfg, base_params, iter(train), int(c.score.num_batches), float(c.score.rtol), grid
  )
  t_score = time.time() - t0
  fro = np.linalg.norm(scores.products, axis=(-2, -1))
  ranks_by_rtol = {}
  for rtol in c.score.rtol_sweep:
    r, _ = pl.ranks_from_products(scores.products, float(rtol))
    ranks_by_rtol[f"{rtol:g}"] = r
  print(
    f"[1] scored {len(grid)} edges over {scores.num_batches} batches ({scores.num_tokens} "
    f"tokens) in {t_score:.1f}s; rank at rtol={scores.rtol:g}: min "
    f"{min(scores.rank(e) for e in grid)}, max {max(scores.rank(e) for e in grid)} "
    f"(of {cfg.d_model})",
    flush=True,
  )

  # (2) single-edge adapters
  rs = np.random.RandomState(int(c.seed))
  if c.train.selection == "all":
    chosen = list(grid)
  elif c.train.selection == "topk":
    order = sorted(grid, key=lambda e: (-scores.rank(e), -fro[e.src, e.dst]))
    chosen = order[:num_edges]
  else:
    chosen = [grid[i] for i in sorted(rs.choice(len(grid), num_edges, replace=False))]
  adalink_edge = pl.Edge(0, 0, "sequential")
  if adalink_edge in grid and adalink_edge not in chosen:
    chosen.insert(0, adalink_edge)  # AdaLink's placement is always trained, to see where it stands
  runner = Runner(c, cfg, base_params, train, val, candidates)
  singles = []
  t0 = time.time()
  for idx, e in enumerate(chosen):
    res, _ = runner.run_edges([e])
    res.update(
      edge=[e.src, e.dst], kind=e.kind, rank=scores.rank(e), grad_fro_norm=float(fro[e.src, e.dst])
    )
    singles.append(res)
    print(
      f"[2] {idx + 1:2d}/{len(chosen)} edge ({e.src},{e.dst}) {e.kind:10s} rank "
      f"{res['rank']:2d}  val_loss {res['val_loss']:.4f}  class_acc {res['class_acc']:.3f}  "
      f"exact {res['exact_match']:.3f}  ({res['seconds']:.1f}s)",
      flush=True,
    )
  # Seed-to-seed noise of the metric: a few of the edges again from other adapter inits.
  noise = []
  for e in chosen[: int(c.train.noise_edges)]:
    vals = [next(s for s in singles if s["edge"] == [e.src, e.dst])[PRIMARY]]
    for extra in range(1, int(c.train.noise_seeds) + 1):
      vals.append(runner.run_edges([e], init_seed=int(c.seed) + 100 + extra)[0][PRIMARY])
    noise.append({"edge": [e.src, e.dst], PRIMARY: vals, "std": float(np.std(vals, ddof=1))})
  noise_std = float(np.sqrt(np.mean([n_["std"] ** 2 for n_ in noise]))) if noise else None
  if noise:
    print(
      f"[2] seed-to-seed std of {PRIMARY} (adapter init, {1 + int(c.train.noise_seeds)} "
      f"seeds, edges {[tuple(n_['edge']) for n_ in noise]}): {noise_std:.4f}; spread over "
      f"single edges: {min(s[PRIMARY] for s in singles):.4f} .. "
      f"{max(s[PRIMARY] for s in singles):.4f}",
      flush=True,
    )
  by_metric = sorted(singles, key=lambda s: s[PRIMARY])
  single_00 = next((s for s in singles if s["edge"] == [0, 0]), None)
  if single_00 is not None:
    place = by_metric.index(single_00) + 1
    print(
      f"[2] AdaLink's edge (0,0): {PRIMARY} {single_00[PRIMARY]:.4f}, {place} of "
      f"{len(singles)} single edges; best {tuple(by_metric[0]['edge'])} "
      f"{by_metric[0][PRIMARY]:.4f}",
      flush=True,
    )
  t_single = time.time() - t0

  # (3) correlation and figures
  neg_loss = [-s[PRIMARY] for s in singles]
  ranks = [s["rank"] for s in singles]
  corr = {
    "rank_vs_neg_val_loss": spearman(ranks, neg_loss),
    "rank_vs_class_acc": spearman(ranks, [s["class_acc"] for s in singles]),
    "grad_fro_norm_vs_neg_val_loss": spearman([s["grad_fro_norm"] for s in singles], neg_loss),
    "rank_vs_neg_val_loss_by_rtol": {
      k: spearman([int(r[s["edge"][0], s["edge"][1]]) for s in singles], neg_loss)
      for k, r in ranks_by_rtol.items()
    },
  }
  rank_m = np.full((n, n), np.nan)
  for e in grid:
    rank_m[e.src, e.dst] = scores.rank(e)
  metric_m = np.full((n, n), np.nan)
  for s in singles:
    metric_m[s["edge"][0], s["edge"][1]] = s[PRIMARY]
  rho_text = f"Spearman(rank, -val loss) = {fmt_rho(corr['rank_vs_neg_val_loss'])}"
  heatmap(
    os.path.join(out, "rank_heatmap.png"),
    rank_m,
    f"gradient rank at init (rtol={scores.rtol:g}, {scores.num_tokens} tokens)\n"
    "diagonal sequential, j=i+1 parallel, above long-range, below recurrent",
    f"rank (of d_model={cfg.d_model})",
    "{:.0f}",
    "viridis",
    highlight=(0, 0),
  )
  heatmap(
    os.path.join(out, "metric_heatmap.png"),
    metric_m,
    f"single-edge adapter (rank {c.method.rank}, {c.train.num_steps} steps): "
    f"{c.data.task} validation label loss\n(lower is better; grey = not trained; red box "
    "= AdaLink's (0, 0))",
    "validation loss",
    "{:.3f}",
    "viridis_r",
    highlight=(0, 0),
  )
  scatter(os.path.join(out, "rank_vs_metric.png"), singles, rho_text, scores.rtol)
  print(f"[3] {rho_text}", flush=True)
  print(
    f"    Spearman(rank, class_acc) = {fmt_rho(corr['rank_vs_class_acc'])}; "
    f"Spearman(||G||_F, -val loss) = {fmt_rho(corr['grad_fro_norm_vs_neg_val_loss'])}"
  )
  print(
    "    by rtol: "
    + ", ".join(f"{k}: {fmt_rho(v)}" for k, v in corr["rank_vs_neg_val_loss_by_rtol"].items())
  )

  # (4) random search with a budget of k adapters, and the references
  k = int(c.search.k)
  t0 = time.time()
  trials = []
  for t in range(int(c.search.num_trials)):
    picked = [grid[i] for i in sorted(rs.choice(len(grid), k, replace=False))]
    res, picked = runner.run_edges(picked)
    res.update(edges=[[e.src, e.dst, e.kind] for e in picked])
    trials.append(res)
    print(
      f"[4] trial {t + 1}/{c.search.num_trials} {[(e.src, e.dst) for e in picked]} val_loss "
      f"{res['val_loss']:.4f} class_acc {res['class_acc']:.3f} ({res['seconds']:.1f}s)",
      flush=True,
    )
  best = min(trials, key=lambda r: r[PRIMARY])
  top_by_rank = sorted(grid, key=lambda e: (-scores.rank(e), -fro[e.src, e.dst]))[:k]
  topk_res, top_by_rank = runner.run_edges(top_by_rank, routed=False)
  topk_res.update(edges=[[e.src, e.dst, e.kind] for e in top_by_rank])
  every = pl.everywhere_edges(cfg.num_encoder_layers)
  every_res, every = runner.run_edges(every, routed=False)
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
  t_search = time.time() - t0

  rows = [
    (f"best of {len(trials)} random {k}-edge sets", best),
    (f"top-{k} edges by gradient rank", topk_res),
    (f"parallel everywhere ({len(every)} edges, r={c.method.rank})", every_res),
    (f"AdaLink (0,0) r={adalink_rank} (= {k}-edge budget)", adalink_res),
  ]
  if single_00 is not None:
    rows.append((f"AdaLink (0,0) r={c.method.rank} (single edge)", single_00))
  print(
    f"\n[4] random placement search, budget k={k} adapters of rank {c.method.rank} "
    f"({c.train.num_steps} steps each, {c.data.task} validation, n={n_val})"
  )
  header = (
    f"{'placement':46s} {'params':>7s} {'val_loss':>9s} {'tok_acc':>8s} "
    f"{'exact':>6s} {'cls_acc':>8s}  edges"
  )
  print(header)
  print("-" * len(header))
  for name, r in rows:
    edges = r.get("edges") or [r["edge"] + [r["kind"]]]
    print(
      f"{name:46s} {r['params']:7d} {r['val_loss']:9.4f} {r['token_acc']:8.4f} "
      f"{r['exact_match']:6.3f} {r['class_acc']:8.3f}  {[tuple(e[:2]) for e in edges]}"
    )

  result = {
    "config": json.loads(c.to_json()),
    "model": {
      "num_encoder_layers": cfg.num_encoder_layers,
      "d_model": cfg.d_model,
      "num_nodes": n,
      "node_labels": [pl.node_label(i) for i in range(n)],
      "init": "random (seed config.model.init_seed)",
    },
    "metric": {
      "primary": PRIMARY,
      "better": "lower",
      "definition": "teacher-forced mean cross-entropy of the label tokens (label word "
      "+ EOS) on the validation split; token_acc: argmax accuracy of "
      "those tokens; exact_match: every label token argmax-correct "
      "(greedy decoding emits the label); class_acc: the label word "
      "with the highest log-likelihood is the gold one",
      "validation_examples": n_val,
    },
    "score": {
      "rtol": scores.rtol,
      "num_batches": scores.num_batches,
      "num_tokens": scores.num_tokens,
      "grid_nodes": nodes,
      "ranks": matrix_json(rank_m),
      "ranks_by_rtol": {
        k_: matrix_json(np.where(np.isfinite(rank_m), r, np.nan)) for k_, r in ranks_by_rtol.items()
      },
      "grad_fro_norm": matrix_json(np.where(np.isfinite(rank_m), fro, np.nan)),
      "singular_values_relative": {
        f"{e.src},{e.dst}": (
          scores.singular_values[e.src, e.dst]
          / max(scores.singular_values[e.src, e.dst, 0], 1e-300)
        ).tolist()
        for e in grid
      },
    },
    "single_edges": {
      "selection": c.train.selection,
      "results": singles,
      "order_by_" + PRIMARY: [s["edge"] for s in by_metric],
      "adalink_place": (by_metric.index(single_00) + 1 if single_00 is not None else None),
      "seed_noise": {"runs": noise, "pooled_std": noise_std},
    },
    "spearman": corr,
    "search": {
      "k": k,
      "trials": trials,
      "best": best,
      "topk_by_rank": topk_res,
      "everywhere": every_res,
      "adalink_equal_budget": adalink_res,
      "adalink_single_edge": single_00,
    },
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
  print(
    f"\nwrote {path}, rank_heatmap.png, metric_heatmap.png, rank_vs_metric.png in {out}; "
    f"{runner.compiles} compiled step variants; total {time.time() - t_start:.0f}s"
  )


if __name__ == "__main__":
  app.run(main)
