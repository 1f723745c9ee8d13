"""The placement study's setup: its config validated before any data or compile (the model, the
candidate edge grid, the settings), and the data every placement trains and is evaluated on (the
same train batches in the same order, padded validation batches and the label words)."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Sequence

import numpy as np

from adalink import config_fields as cf
from adalink.data.tasks import glue_spec
from adalink.models import t5
from adalink.peft import methods
from adalink.peft import placement_graph as graph

SELECTIONS = ("random", "topk", "all")
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
  grid: List[graph.Edge]
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
  n = graph.num_nodes(layers)
  nodes = tuple(c.grid.nodes) or tuple(range(n))
  for k in nodes:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n:
      raise ValueError(
        f"config.grid.nodes: node {k!r} is out of range for a {layers}-layer "
        f"encoder (nodes 0..{n - 1})"
      )
  grid = graph.grid_edges(nodes)
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
