# pylint: disable=line-too-long
r"""Adapter placement search (arXiv 2410.15858 on the T5 encoder): gradient rank vs trained metric.

The CPU study (tiny random T5 with 4 encoder layers -> 9 nodes, SST-2 from ../shared, byte vocab;
about 8 minutes on 2 shared CPU cores):
  python scripts/placement.py --config=configs/placement.py:sst2 --out=/tmp/placement

Variants: `sst2`, `rte` (the same study on RTE, longer inputs), `smoke` (2 layers, the package's
tiny SST-2 fixture, a few steps: a one-minute end-to-end check). Options after a comma:
`,layers=N` (encoder layers), `,steps=N` (train steps per placement). Every field can be
overridden on the command line, e.g. --config.train.selection=topk --config.search.k=2.

What it does (adalink/experiments/placement_study.py): (1) scores every edge (i, j) over `grid.nodes` (all nodes when
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

Gradient-rank tolerance: placement_scores.DEFAULT_RTOL (1e-5) is the numerical choice (the float32 noise
floor of G measured here is ~3e-7 of sigma_max). At d_model = 32 with thousands of tokens every G
is full rank at that tolerance, so this study counts directions within 1% of the strongest
(`score.rtol = 1e-2`, an effective rank) and records the rank and its Spearman correlation at
every tolerance in `score.rtol_sweep` so the dependence on the choice is visible.
"""

import os

import ml_collections

from configs import common

SHARED = common.SHARED
VARIANTS = ("sst2", "rte", "smoke")
OPTIONS = {"layers": common.positive_int, "steps": common.positive_int}


def base_config() -> ml_collections.ConfigDict:
  """The SST-2 study: a 4-layer tiny random T5, 24 random single edges of rank 4 trained for 200
  steps each, then 8 random 3-edge sets."""
  return common.section(
    seed=0,
    model=common.section(
      size="tiny",
      num_encoder_layers=4,  # 0: the size's own; 4 -> 9 nodes
      init_seed=0,
      dropout_rate=0.0,
      vocab="byte",
    ),
    # The placement method section every run is built from; `edges` is set per run.
    method=common.section(name="placement", rank=4, activation="linear", dropout_rate=0.0),
    data=common.section(
      data_dir=os.path.join(SHARED, "data", "glue"),
      task="sst2",
      inputs_length=64,  # bytes; SST-2 sentences are truncated (CPU budget)
      targets_length=12,
      batch_size=16,
    ),
    grid=common.section(nodes=()),  # the subsampled adjacency matrix's nodes; () = all 2L+1
    score=common.section(
      num_batches=4, rtol=1e-2, rtol_sweep=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
    ),
    train=common.section(
      selection="random",  # random | topk | all
      num_edges=24,
      num_steps=200,
      noise_edges=2,  # re-train the first N chosen edges ...
      noise_seeds=2,  # ... from this many other adapter inits (metric noise)
    ),
    optimizer=common.section(name="adafactor", decay_rate=0.8),
    schedule=common.schedule_section(peak_lr=3e-2, warmup_steps=20),
    eval=common.section(batch_size=64, max_examples=0),  # 0 = the whole validation split
    search=common.section(k=3, num_trials=8),
  )


def get_config(arg: str = "sst2") -> ml_collections.ConfigDict:
  a = common.parse_arg(
    arg, config_file="configs/placement.py", variants=VARIANTS, options=OPTIONS, default="sst2"
  )
  c = base_config()
  if a.variant == "rte":
    c.data.update(task="rte", inputs_length=128, targets_length=16, batch_size=8)
  elif a.variant == "smoke":
    c.model.num_encoder_layers = 2
    c.data.update(data_dir="{package}/data/fixtures/testdata/glue_tiny", batch_size=8)
    c.score.num_batches = 2
    c.train.update(num_edges=6, num_steps=10, noise_edges=1, noise_seeds=1)
    c.schedule.warmup_steps = 2
    c.eval.batch_size = 16
    c.search.update(k=2, num_trials=2)
  if "layers" in a:
    c.model.num_encoder_layers = a.get("layers")
  if "steps" in a:
    c.train.num_steps = a.get("steps")
  return c
