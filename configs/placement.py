# pylint: disable=line-too-long
r"""Adapter placement search (arXiv 2410.15858 on the T5 encoder): gradient rank vs trained metric.

The CPU study (tiny random T5 with 4 encoder layers -> 9 nodes, SST-2 from ../shared, byte vocab;
about 8 minutes on 2 shared CPU cores):
  python scripts/placement.py --config=configs/placement.py:sst2 --out=/tmp/placement

Variants: `sst2`, `rte` (the same study on RTE, longer inputs), `smoke` (2 layers, the package's
tiny SST-2 fixture, a few steps: a one-minute end-to-end check). Options after a comma:
`,layers=N` (encoder layers), `,steps=N` (train steps per placement). Every field can be
overridden on the command line, e.g. --config.train.selection=topk --config.search.k=2.

What it does (scripts/placement.py): (1) scores every edge (i, j) over `grid.nodes` (all nodes when
empty) by gradient rank at initialisation; (2) trains single-edge adapters for `train.num_edges`
of them (`train.selection`: random, topk by rank, or all; AdaLink's (0, 0) is always added) for
`train.num_steps` steps each, all on the same batches and from the same adapter init, and a few
of them again from other inits to measure the metric's seed-to-seed noise; (3) writes
placement.json, rank_heatmap.png, metric_heatmap.png and rank_vs_metric.png and prints
Spearman(rank, metric); (4) a random search over sets of `search.k` edges, compared with parallel
adapters everywhere (2L edges) and with AdaLink of rank k * method.rank (the same parameter count
as a k-edge set), and with the top-k edges by gradient rank.

The model is a random-init tiny T5 (no pretrained weights here), so the metric must be graded:
the primary metric is the validation loss of the label tokens (teacher-forced mean token
cross-entropy; lower is better). Also recorded: token accuracy, exact match (every label token
argmax-correct, i.e. greedy decoding would emit the label) and rank-classification accuracy (the
label word with the higher likelihood).

Gradient-rank tolerance: placement.DEFAULT_RTOL (1e-5) is the numerical choice (the float32 noise
floor of G measured here is ~3e-7 of sigma_max). At d_model = 32 with thousands of tokens every G
is full rank at that tolerance, so this study counts directions within 1% of the strongest
(`score.rtol = 1e-2`, an effective rank) and records the rank and its Spearman correlation at
every tolerance in `score.rtol_sweep` so the dependence on the choice is visible.
"""

import os

import ml_collections

_HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(_HERE, "..", "..", "shared")
VARIANTS = ("sst2", "rte", "smoke")


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.size = "tiny"
  c.model.num_encoder_layers = 4  # 0: the size's own; 4 -> 9 nodes
  c.model.init_seed = 0
  c.model.dropout_rate = 0.0
  c.model.vocab = "byte"

  # The placement method section every run is built from; `edges` is set per run.
  c.method = ml_collections.ConfigDict()
  c.method.name = "placement"
  c.method.rank = 4
  c.method.activation = "linear"
  c.method.dropout_rate = 0.0

  c.data = ml_collections.ConfigDict()
  c.data.data_dir = os.path.join(SHARED, "data", "glue")
  c.data.task = "sst2"
  c.data.inputs_length = 64  # bytes; SST-2 sentences are truncated (CPU budget)
  c.data.targets_length = 12
  c.data.batch_size = 16

  c.grid = ml_collections.ConfigDict()
  c.grid.nodes = ()  # the subsampled adjacency matrix's nodes; () = all 2L+1

  c.score = ml_collections.ConfigDict()
  c.score.num_batches = 4
  c.score.rtol = 1e-2
  c.score.rtol_sweep = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1)

  c.train = ml_collections.ConfigDict()
  c.train.selection = "random"  # random | topk | all
  c.train.num_edges = 24
  c.train.num_steps = 200
  c.train.noise_edges = 2  # re-train the first N chosen edges ...
  c.train.noise_seeds = 2  # ... from this many other adapter inits (metric noise)

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adafactor"
  c.optimizer.decay_rate = 0.8
  c.schedule = ml_collections.ConfigDict()
  c.schedule.peak_lr = 3e-2
  c.schedule.warmup_steps = 20

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 64
  c.eval.max_examples = 0  # 0 = the whole validation split

  c.search = ml_collections.ConfigDict()
  c.search.k = 3
  c.search.num_trials = 8
  return c


def get_config(arg: str = "sst2") -> ml_collections.ConfigDict:
  parts = [p for p in (arg or "sst2").split(",") if p]
  variant, opts = parts[0], {}
  if variant not in VARIANTS:
    raise ValueError(f"configs/placement.py: unknown variant {variant!r}; known: {VARIANTS}")
  for kv in parts[1:]:
    key, sep, value = kv.partition("=")
    if not sep or key not in ("layers", "steps"):
      raise ValueError(f"configs/placement.py: option {kv!r} must be layers=N or steps=N")
    if not value.isdigit() or int(value) <= 0:
      raise ValueError(
        f"configs/placement.py: option {key} must be a positive integer, got {value!r}"
      )
    opts[key] = int(value)
  c = base_config()
  if variant == "rte":
    c.data.task = "rte"
    c.data.inputs_length = 128
    c.data.targets_length = 16
    c.data.batch_size = 8
  elif variant == "smoke":
    c.model.num_encoder_layers = 2
    c.data.data_dir = "{package}/data/testdata/glue_tiny"
    c.data.batch_size = 8
    c.score.num_batches = 2
    c.train.num_edges = 6
    c.train.num_steps = 10
    c.train.noise_edges = 1
    c.train.noise_seeds = 1
    c.schedule.warmup_steps = 2
    c.eval.batch_size = 16
    c.search.k = 2
    c.search.num_trials = 2
  if "layers" in opts:
    c.model.num_encoder_layers = opts["layers"]
  if "steps" in opts:
    c.train.num_steps = opts["steps"]
  return c
