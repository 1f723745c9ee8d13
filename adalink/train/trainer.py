"""`train_and_evaluate(config, workdir)`: the training job every config launches.

Order of work, chosen so a bad run cannot damage a good directory:
  1. everything that can be wrong is checked first (method, model size, checkpoint path, mesh,
     batch divisibility, data) and the work dir is not created or touched until all of it passed;
  2. the frozen base comes from its original checkpoint (or the config's seed for random-init
     runs), adapters are initialised around it, and the latest run checkpoint, if any, is restored
     (trainable weights, optimiser state, step, data position);
  3. the loop trains, logs, checkpoints every N steps and evaluates every M steps; a non-finite
     loss stops it before anything computed from it is saved.

The data layer (seqio, TensorFlow) is imported inside the functions that read data, so this module
and the step function import without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional

import jax
import numpy as np
import flax.linen as nn
from jax.experimental import multihost_utils

from adalink.models import t5
from adalink.peft import methods
from adalink.train import checkpoints as ckpt_lib
from adalink.train import decoding
from adalink.train import optim
from adalink.train import partitioning
from adalink.train import step as step_lib

log = logging.getLogger("adalink.train")

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- configuration


def _get(cfg, dotted: str, default=None):
  node = cfg
  for part in dotted.split("."):
    if node is None or part not in node:
      return default
    node = node[part]
  return node


def _require(cfg, dotted: str):
  value = _get(cfg, dotted, None)
  if value is None:
    raise ValueError(f"config.{dotted} is missing")
  return value


MODEL_KINDS = ("t5", "pali")
DATA_KINDS = ("glue", "captioning", "pretrain", "batch_files")


def model_config(config):
  """T5Config, or PaLIConfig for `model.kind = 'pali'` (T5 plus a ViT of `model.vit_size`)."""
  kind = _get(config, "model.kind", "t5")
  if kind not in MODEL_KINDS:
    raise ValueError(f"config.model.kind must be one of {MODEL_KINDS}, got {kind!r}")
  size = _require(config, "model.size")
  overrides = {
    k: _get(config, f"model.{k}")
    for k in ("dropout_rate", "dtype", "vocab_size")
    if _get(config, f"model.{k}") is not None
  }
  try:
    text = t5.get_config(size, **overrides)
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from None
  if kind == "t5":
    return text
  from adalink.models import pali, vit

  vit_overrides = {"dtype": text.dtype}
  if _get(config, "model.image_size"):
    vit_overrides["image_size"] = int(config.model.image_size)
  try:
    vision = vit.get_config(_require(config, "model.vit_size"), **vit_overrides)
  except ValueError as e:
    raise ValueError(f"config.model.vit_size: {e}") from None
  return pali.PaLIConfig(text, vision)


def text_config(cfg) -> t5.T5Config:
  return cfg.text if hasattr(cfg, "vision") else cfg


def method_spec(config, model_cfg) -> methods.MethodSpec:
  from adalink.data.tasks import glue_spec

  streams = ("image", "text") if hasattr(model_cfg, "vision") else methods.TEXT_STREAMS
  name = _get(config, "method.name")
  if hasattr(model_cfg, "vision") and name not in ("ft", "lora", "pt", "adalink"):
    raise ValueError(
      f"config.method.name={name!r} is not available on the image+text model "
      f"(model.kind='pali'); use ft, lora, pt or adalink"
    )
  return methods.spec_from_config(
    _require(config, "method"),
    text_config(model_cfg).d_model,
    available_streams=streams,
    num_tasks=len(glue_spec.GLUE_TASKS),
  )


def build_model(model_cfg, spec: methods.MethodSpec):
  if hasattr(model_cfg, "vision"):
    from adalink.peft.multimodal import PeftPaLI

    return PeftPaLI(model_cfg, spec)
  return methods.build_model(model_cfg, spec)


def resolve_path(path: str) -> str:
  """Expands `{package}` (this package's folder) and `~` in config paths."""
  return os.path.abspath(os.path.expanduser(path.replace("{package}", PACKAGE_DIR)))


@dataclasses.dataclass
class Plan:
  """Everything `train_and_evaluate` needs, built and validated before any side effect."""

  config: Any
  model_config: t5.T5Config
  spec: methods.MethodSpec
  mesh: Any
  checkpoint: Optional[str]
  vit_checkpoint: Optional[str] = None


def plan(config) -> Plan:
  """All static checks, in the order a user would want to hear about them."""
  cfg = model_config(config)
  spec = method_spec(config, cfg)
  data_kind = _get(config, "data.kind", "glue")
  if data_kind not in DATA_KINDS:
    raise ValueError(f"config.data.kind must be one of {DATA_KINDS}, got {data_kind!r}")
  if (data_kind == "captioning") != hasattr(cfg, "vision"):
    raise ValueError(
      f"config.data.kind={data_kind!r} needs config.model.kind="
      f"{'pali' if data_kind == 'captioning' else 't5'}"
    )
  checkpoint = _get(config, "model.checkpoint") or None
  init = _get(config, "model.init", "checkpoint")
  if init not in ("checkpoint", "random"):
    raise ValueError(f"config.model.init must be 'checkpoint' or 'random', got {init!r}")
  if init == "checkpoint":
    if not checkpoint:
      raise ValueError(
        "config.model.checkpoint is empty: this variant fine-tunes a pretrained "
        "model; pass --config.model.checkpoint=DIR (a Hugging Face T5 directory "
        "or a T5X checkpoint), or --config.model.init=random for a random base"
      )
    checkpoint = resolve_path(checkpoint)
    if not os.path.exists(checkpoint):
      raise FileNotFoundError(f"config.model.checkpoint: no such file or directory: {checkpoint}")
  vit_checkpoint = _get(config, "model.vit_checkpoint") or None
  if vit_checkpoint:
    vit_checkpoint = resolve_path(vit_checkpoint)
    if not os.path.exists(vit_checkpoint):
      raise FileNotFoundError(
        f"config.model.vit_checkpoint: no such file or directory: {vit_checkpoint}"
      )
  mesh = partitioning.make_mesh(tuple(_require(config, "sharding.mesh")))
  batch = int(_require(config, "data.batch_size"))
  partitioning.check_batch_divisible(batch, mesh, "config.data.batch_size")
  partitioning.check_batch_divisible(
    int(_get(config, "eval.batch_size", batch)), mesh, "config.eval.batch_size"
  )
  for field in ("train.num_steps", "train.checkpoint_every", "train.log_every"):
    value = _require(config, field)
    if not isinstance(value, int) or value <= 0:
      raise ValueError(f"config.{field} must be a positive integer, got {value!r}")
  host_split = _get(config, "data.host_split", "shard")
  if host_split not in ("shard", "slice"):
    raise ValueError(f"config.data.host_split must be 'shard' or 'slice', got {host_split!r}")
  return Plan(config, cfg, spec, mesh, checkpoint if init == "checkpoint" else None, vit_checkpoint)


# ----------------------------------------------------------------------------- data


@dataclasses.dataclass
class Data:
  kind: str  # glue | captioning | pretrain | batch_files
  vocabulary: Any  # None for batch_files (token ids only)
  train: Any  # seqio Task or Mixture; a BatchFiles for batch_files
  evals: Dict[str, Any]  # eval name -> seqio Task (or the BatchFiles)
  lengths: Dict[str, int]


def _vocabulary(config, text_cfg: t5.T5Config):
  from adalink.data.pipeline import vocab as vocab_lib

  kind = _get(config, "model.vocab", "byte")
  path = _get(config, "model.vocab_path") or None
  extra_ids = int(_get(config, "model.vocab_extra_ids", 0) or 0)
  vocabulary = vocab_lib.get_vocabulary(
    kind, resolve_path(path) if path else None, extra_ids=extra_ids
  )
  if vocabulary.vocab_size > text_cfg.vocab_size:
    raise ValueError(
      f"config.model.vocab: the {kind} vocabulary has {vocabulary.vocab_size} ids "
      f"but the model's table has {text_cfg.vocab_size} rows"
    )
  return vocabulary


def _existing_dir(config, dotted: str) -> str:
  value = _get(config, dotted) or None
  if not value:
    raise ValueError(f"config.{dotted} is empty")
  path = resolve_path(value)
  if not os.path.exists(path):
    raise FileNotFoundError(f"config.{dotted}: no such file or directory: {path}")
  return path


def build_data(config, model_cfg) -> Data:
  kind = _get(config, "data.kind", "glue")
  if kind == "batch_files":
    return _batch_files_data(config, model_cfg)
  vocabulary = _vocabulary(config, text_config(model_cfg))
  lengths = {
    "inputs": int(_require(config, "data.inputs_length")),
    "targets": int(_get(config, "data.targets_length", 0) or 0),
  }
  if kind == "captioning":
    train, evals = _captioning_tasks(config, model_cfg, vocabulary)
  elif kind == "pretrain":
    train, evals = _pretrain_tasks(config, vocabulary, lengths)
  else:
    train, evals = _glue_tasks(config, vocabulary)
  return Data(kind, vocabulary, train, evals, lengths)


def _glue_tasks(config, vocabulary):
  from adalink.data.tasks import glue

  tasks = list(_require(config, "data.tasks"))
  if not tasks:
    raise ValueError("config.data.tasks is empty")
  source = _get(config, "data.source", "tsv")
  data_dir = _existing_dir(config, "data.data_dir") if source == "tsv" else None
  kw = dict(
    source=source,
    data_dir=data_dir,
    vocabulary=vocabulary,
    tfds_data_dir=_get(config, "data.tfds_data_dir") or None,
    on_bad_row=_get(config, "data.on_bad_row", "error"),
  )
  if len(tasks) == 1:
    train = glue.get_glue_task(tasks[0], **kw)
  else:
    train = glue.get_glue_mixture(tasks, cap=_get(config, "data.mixture_cap"), **kw)
  evals = {}
  for name in tasks:
    for view in ("mnli_matched", "mnli_mismatched") if name == "mnli" else (name,):
      evals[view] = glue.get_glue_task(view, **kw)
  return train, evals


def _captioning_tasks(config, model_cfg, vocabulary):
  from adalink.data.tasks import captioning

  dataset = _get(config, "data.dataset", "image_captions")
  ann = _existing_dir(config, "data.annotation_file")
  image_dir = _get(config, "data.image_dir") or None
  kw = dict(
    vocabulary=vocabulary,
    image_size=model_cfg.vision.image_size,
    normalization=_get(config, "data.normalization", "minus_one_to_one"),
    prompt=_get(config, "data.prompt", captioning.DEFAULT_PROMPT),
  )
  if dataset == "image_captions":
    task = captioning.get_image_caption_task(
      ann,
      resolve_path(image_dir) if image_dir else None,
      validation_fraction=float(_get(config, "data.validation_fraction", 0.1)),
      **kw,
    )
  elif dataset == "coco_karpathy":
    task = captioning.get_coco_karpathy_task(ann, _existing_dir(config, "data.image_dir"), **kw)
  elif dataset == "textcaps":
    splits = {"train": ann}
    if _get(config, "data.validation_annotation_file"):
      splits["validation"] = _existing_dir(config, "data.validation_annotation_file")
    task = captioning.get_textcaps_task(splits, _existing_dir(config, "data.image_dir"), **kw)
  else:
    raise ValueError(
      f"config.data.dataset must be image_captions, coco_karpathy or textcaps, got {dataset!r}"
    )
  return task, {dataset: task}


def _pretrain_tasks(config, vocabulary, lengths):
  """Span corruption or prefix LM over plain text. The targets length follows from the inputs
  length for span corruption (so packed rows fill exactly): lengths are updated in place."""
  from adalink.data.tasks import pretrain

  targets = int(_get(config, "data.targets_length", 0) or 0)
  task = pretrain.get_text_task(
    _existing_dir(config, "data.text_dir"),
    objective=_get(config, "data.objective", "span_corruption"),
    vocabulary=vocabulary,
    inputs_length=lengths["inputs"],
    targets_length=targets or None,
    validation_fraction=float(_get(config, "data.validation_fraction", 0.01)),
  )
  lengths.update(pretrain.feature_lengths(task))
  return task, {"pretrain": task}


def _batch_files_data(config, model_cfg) -> Data:
  """Batches saved by scripts/pretokenize.py: no TensorFlow, no vocabulary, fixed batch sizes."""
  from adalink.data.pipeline import batch_files

  files = batch_files.BatchFiles(_existing_dir(config, "data.batch_dir"))
  where = os.path.join(files.directory, batch_files.META)
  for field, split in (("data.batch_size", "train"), ("eval.batch_size", "validation")):
    if split == "validation" and split not in files.meta["splits"]:
      continue
    want = int(_get(config, field, config.data.batch_size))
    if want != files.batch_size(split):
      raise ValueError(
        f"config.{field}={want}, but the {split} batches in {where} hold "
        f"{files.batch_size(split)} rows; set it to that or pretokenize again"
      )
  for name, field in (("inputs", "data.inputs_length"), ("targets", "data.targets_length")):
    want = int(_get(config, field, 0) or 0)  # targets 0: derived from the inputs length
    if want and want != files.lengths.get(name):
      raise ValueError(
        f"config.{field}={want}, but the batches in {where} were saved with "
        f"{name} length {files.lengths.get(name)}"
      )
  vocab_size = int(files.source.get("vocab_size", 0))
  if vocab_size > text_config(model_cfg).vocab_size:
    raise ValueError(
      f"{where}: token ids from a {vocab_size}-id vocabulary, but the model's "
      f"table has {text_config(model_cfg).vocab_size} rows"
    )
  evals = {"pretrain": files} if "validation" in files.meta["splits"] else {}
  return Data("batch_files", None, files, evals, dict(files.lengths))


def train_batches(config, data: Data, start_position: int) -> Iterator[Dict[str, np.ndarray]]:
  """This process's part of each global batch, starting after `start_position` batches.

  host_split='shard': each process reads its own shard of the examples (the efficient default).
  host_split='slice': each process reads the global stream and keeps its rows, so the global
  batches are the same for any number of processes (reproducibility across topologies).
  """
  n_proc, pid = jax.process_count(), jax.process_index()
  global_batch = int(config.data.batch_size)
  local = global_batch // n_proc
  if data.kind == "batch_files":
    # Saved global batches: every process reads them all and keeps its rows.
    total = data.train.num_batches("train")
    wrap = lambda epoch: log.warning(
      "saved train batches exhausted (%d); epoch %d starts over them", total, epoch
    )
    for batch in data.train.batches("train", start_position, repeat=True, on_wrap=wrap):
      yield {
        k: v[pid * local : (pid + 1) * local]
        for k, v in batch.items()
        if k in step_lib.MODEL_FEATURES or k == "decoder_loss_weights"
      }
    return
  from adalink.data.pipeline import features

  sliced = _get(config, "data.host_split", "shard") == "slice"
  ds = features.make_dataset(
    data.train,
    "train",
    data.lengths,
    global_batch if sliced else local,
    shuffle=True,
    seed=int(_get(config, "seed", 0)),
    shard_index=0 if sliced else pid,
    num_shards=1 if sliced else n_proc,
    repeat=True,
    pack=bool(_get(config, "data.pack", False)),
  )
  ds = ds.skip(start_position)
  for batch in ds.as_numpy_iterator():
    batch = {
      k: v for k, v in batch.items() if k in step_lib.MODEL_FEATURES or k == "decoder_loss_weights"
    }
    if sliced:
      batch = {k: v[pid * local : (pid + 1) * local] for k, v in batch.items()}
    yield batch


# ----------------------------------------------------------------------------- model state


def _load_text_base(p: Plan, text_cfg: t5.T5Config) -> Dict[str, Any]:
  seed = int(_get(p.config, "model.init_seed", 0))
  if p.checkpoint is None:
    return t5.init_params(text_cfg, jax.random.PRNGKey(seed))
  from adalink import convert

  loaded_cfg, params = convert.load_checkpoint(p.checkpoint, config=text_cfg)
  arch = lambda c: {k: v for k, v in c.to_dict().items() if k not in ("dropout_rate", "dtype")}
  if arch(loaded_cfg) != arch(text_cfg):
    diff = {
      k: (arch(text_cfg)[k], v) for k, v in arch(loaded_cfg).items() if arch(text_cfg).get(k) != v
    }
    raise ValueError(
      f"config.model.size={p.config.model.size!r} does not match the checkpoint "
      f"{p.checkpoint}: (config, checkpoint) differ in {diff}"
    )
  return params


def load_base(p: Plan) -> Dict[str, Any]:
  """The frozen base: from its original checkpoint(s), or from `model.init_seed` when random."""
  cfg = p.model_config
  if not hasattr(cfg, "vision"):
    return _load_text_base(p, cfg)
  from adalink.models import pali

  seed = int(_get(p.config, "model.init_seed", 0))
  # Random parts (the projection, and any tower without a checkpoint) come from the seed.
  params = dict(pali.init_params(cfg, jax.random.PRNGKey(seed)))
  if p.checkpoint is not None:
    params.update(_load_text_base(p, cfg.text))
  if p.vit_checkpoint is not None:
    from adalink.convert import vit as vit_convert

    if p.vit_checkpoint.endswith(".npz"):
      params["vit"] = vit_convert.load_big_vision_npz(p.vit_checkpoint, cfg.vision)
    else:
      _, params["vit"] = vit_convert.load_hf_vit(p.vit_checkpoint, cfg.vision)
  return params


def shard_variables(variables, boxed_abstract, mesh):
  shardings = partitioning.logical_shardings(boxed_abstract, mesh)
  shardings = {c: shardings[c] for c in variables}
  return jax.device_put(variables, shardings), shardings


# ----------------------------------------------------------------------------- evaluation


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  return np.concatenate([x, np.zeros((rows - len(x),) + x.shape[1:], x.dtype)])


def _decode_batch(model, variables, batch, config, mesh, spec, batch_size: int) -> np.ndarray:
  """Decoded ids for one (possibly short) eval batch; every process gets all rows back."""
  n = len(batch["encoder_input_tokens"])
  n_proc, pid = jax.process_count(), jax.process_index()
  local = batch_size // n_proc
  keys = (
    ["encoder_input_tokens"]
    + (["task_id"] if spec.num_tasks > 1 else [])
    + (["images"] if "images" in batch else [])
  )
  # Pad the last batch to the compiled size; the padding rows are dropped after decoding.
  feats = {
    k: _pad_rows(np.asarray(batch[k]), batch_size)[pid * local : (pid + 1) * local] for k in keys
  }
  feats = partitioning.global_batch(feats, mesh)
  tokens = feats.pop("encoder_input_tokens")
  out = decoding.decode(
    model,
    variables,
    tokens,
    int(config.eval.max_decode_len),
    method=_get(config, "eval.decode", "greedy"),
    beam_size=int(_get(config, "eval.beam_size", 4)),
    alpha=float(_get(config, "eval.alpha", 0.6)),
    **feats,
  )
  return np.asarray(multihost_utils.process_allgather(out, tiled=True))[:n]


def evaluate(model, variables, data: Data, config, mesh, spec) -> Dict[str, float]:
  """Scores every eval task with its own metrics (percent): decoded label metrics for GLUE,
  CIDEr-D against all references for captioning, teacher-forced loss for pretraining."""
  if data.kind in ("pretrain", "batch_files"):
    return evaluate_loss(model, variables, data, config, mesh)
  from adalink.data.pipeline import features

  split = _get(config, "eval.split", "validation")
  batch_size = int(_get(config, "eval.batch_size", config.data.batch_size))
  max_examples = int(_get(config, "eval.max_examples", 0) or 0)
  passthrough = ("targets_pretokenized", "label") if data.kind == "glue" else ()
  results: Dict[str, float] = {}
  primaries = []
  for name, task in data.evals.items():
    texts, golds = [], []
    batches = features.make_batches(
      task, split, data.lengths, batch_size, shuffle=False, repeat=False, passthrough=passthrough
    )
    for batch in batches:
      out = _decode_batch(model, variables, batch, config, mesh, spec, batch_size)
      texts += [data.vocabulary.decode(row) for row in decoding.trim_after_eos(out)]
      if data.kind == "glue":
        golds += list(zip(batch["targets_pretokenized"], batch["label"]))
      if max_examples and len(texts) >= max_examples:
        break
    if data.kind == "glue":
      task_metrics = _glue_metrics(task, texts, golds)
    else:
      from adalink.data.tasks import captioning

      refs = captioning.references_for(task, split)[: len(texts)]
      preds = [captioning.caption_postprocess_fn(t) for t in texts]
      task_metrics = captioning.cider_d_metric(refs, preds)
      if jax.process_index() == 0:
        for p, r in list(zip(preds, refs))[:3]:
          print(f"  [{name}] prediction: {p!r} | reference: {r[0]!r}", flush=True)
    for k, v in task_metrics.items():
      results[f"{name}/{k}"] = float(v)
    primaries.append(float(np.mean(list(task_metrics.values()))))
    results[f"{name}/num_examples"] = float(len(texts))
  results["average"] = float(np.mean(primaries))
  return results


def _glue_metrics(task, texts, golds) -> Dict[str, float]:
  from adalink.data.tasks import glue

  task_spec = glue.get_spec(task)
  preds = [task_spec.postprocess_fn(t, is_target=False) for t in texts]
  targets = [
    task_spec.postprocess_fn(tgt, {"label": label}, is_target=True) for tgt, label in golds
  ]
  out = {}
  for fn in task_spec.metric_fns:
    out.update(fn(targets, preds))
  return out


def evaluate_loss(model, variables, data: Data, config, mesh) -> Dict[str, float]:
  """Teacher-forced token loss and accuracy on the validation split (pretraining eval)."""
  split = _get(config, "eval.split", "validation")
  batch_size = int(_get(config, "eval.batch_size", config.data.batch_size))
  max_batches = int(_get(config, "eval.max_batches", 0) or 0)
  n_proc, pid = jax.process_count(), jax.process_index()
  local = batch_size // n_proc
  loss = jax.jit(lambda v, b: step_lib.loss_fn(model, v, {}, b, None, True)[1])
  totals = {"loss_sum": 0.0, "weight_sum": 0.0, "correct": 0.0}
  if data.kind == "batch_files":
    if not data.evals:
      raise ValueError(
        f"config.data.batch_dir={data.train.directory} has no validation batches "
        f"to evaluate on; pretokenize with --eval_batches > 0, or set "
        f"config.eval.enabled=False"
      )
    source = data.train.batches(split)
  else:
    from adalink.data.pipeline import features

    source = features.make_batches(
      data.evals["pretrain"],
      split,
      data.lengths,
      batch_size,
      shuffle=False,
      repeat=False,
      pack=bool(_get(config, "data.pack", False)),
    )
  for i, batch in enumerate(source):
    if max_batches and i >= max_batches:
      break
    batch = {
      k: _pad_rows(np.asarray(v), batch_size)[pid * local : (pid + 1) * local]
      for k, v in batch.items()
      if k in step_lib.MODEL_FEATURES or k == "decoder_loss_weights"
    }
    aux = jax.device_get(loss(variables, partitioning.global_batch(batch, mesh)))
    for k in totals:
      totals[k] += float(aux[k])
  weight = max(totals["weight_sum"], 1.0)
  return {
    "loss": totals["loss_sum"] / weight,
    "token_accuracy": 100.0 * totals["correct"] / weight,
    "num_tokens": totals["weight_sum"],
    "average": -totals["loss_sum"] / weight,
  }


# ----------------------------------------------------------------------------- logging


class MetricsLog:
  """JSON lines in `workdir/metrics.jsonl` and TensorBoard summaries, from process 0 only."""

  def __init__(self, workdir: str):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.writer = None
    if self.active:
      try:
        from clu import metric_writers

        self.writer = metric_writers.create_default_writer(workdir, asynchronous=False)
      except Exception as e:  # TensorBoard is a convenience; the JSONL file is the record
        log.warning("TensorBoard summaries disabled: %s", e)

  def write(self, step: int, kind: str, values: Mapping[str, float]):
    if not self.active:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": step, "kind": kind, **values}) + "\n")
    if self.writer is not None:
      self.writer.write_scalars(step, {f"{kind}/{k}": v for k, v in values.items()})
      self.writer.flush()


def _config_json(config) -> Dict[str, Any]:
  return json.loads(config.to_json()) if hasattr(config, "to_json") else dict(config)


def _check_resumable(workdir: str, config):
  """Refuses to resume a run directory written by a different model or method."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = json.load(f)
  new = _config_json(config)
  for section in ("model", "method"):
    if old.get(section) != new.get(section):
      raise ValueError(
        f"{workdir} holds a run with a different config.{section} "
        f"({old.get(section)} vs {new.get(section)}); use a new --workdir"
      )


# ----------------------------------------------------------------------------- the job


def maybe_initialize_distributed(config):
  """Multi-host: `jax.distributed.initialize` when the config or the environment asks for it."""
  want = _get(config, "sharding.distributed", "auto")
  env = any(k in os.environ for k in ("JAX_COORDINATOR_ADDRESS", "ADALINK_COORDINATOR"))
  if want is True or (want == "auto" and env):
    if jax.distributed.is_initialized():
      return
    addr = os.environ.get("ADALINK_COORDINATOR") or os.environ.get("JAX_COORDINATOR_ADDRESS")
    kwargs = {}
    if addr:
      kwargs = dict(
        coordinator_address=addr,
        num_processes=int(os.environ["ADALINK_NUM_PROCESSES"]),
        process_id=int(os.environ["ADALINK_PROCESS_ID"]),
      )
    jax.distributed.initialize(**kwargs)


def train_and_evaluate(config, workdir: str) -> Dict[str, Any]:
  """Trains per `config`, evaluating and checkpointing into `workdir`; returns final metrics."""
  maybe_initialize_distributed(config)
  p = plan(config)
  data = build_data(config, p.model_config)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"--workdir {workdir} exists and is not a directory")
  _check_resumable(workdir, config)
  base_params = load_base(p)

  model = build_model(p.model_config, p.spec)
  seed = int(_get(config, "seed", 0))
  rng = jax.random.PRNGKey(seed)
  variables = methods.init_variables(model, jax.random.fold_in(rng, 1), base_params)
  boxed = methods.abstract_variables(model)
  variables, var_shardings = shard_variables(variables, boxed, p.mesh)
  trainable, frozen = methods.split_variables(p.spec, variables)
  train_sh, frozen_sh = methods.split_variables(p.spec, var_shardings)

  tx, schedule = optim.make_optimizer(_require(config, "optimizer"), _require(config, "schedule"))
  opt_sh = partitioning.optimizer_state_shardings(
    jax.eval_shape(tx.init, trainable), train_sh, p.mesh
  )
  opt_state = jax.jit(tx.init, out_shardings=opt_sh)(trainable)
  repl = partitioning.replicated(p.mesh)
  step_fn = step_lib.make_train_step(model, tx, float(_get(config, "train.label_smoothing", 0.0)))
  train_step = jax.jit(
    step_fn,
    in_shardings=(train_sh, opt_sh, frozen_sh, partitioning.batch_sharding(p.mesh), repl),
    out_shardings=(train_sh, opt_sh, repl),
    donate_argnums=(0, 1),
  )

  # Only now is the work dir touched.
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      json.dump(_config_json(config), f, indent=2, sort_keys=True)
  store = ckpt_lib.RunCheckpoints(
    workdir,
    keep=int(_get(config, "train.keep_checkpoints", 2)),
    best_metric=_get(config, "eval.best_metric") or None,
    best_mode=_get(config, "eval.best_mode", "max"),
  )
  start_step, position = 0, 0
  if store.latest_step() is not None:
    abstract = {
      "trainable": jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), trainable
      ),
      "opt_state": jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), opt_state
      ),
    }
    state, meta = store.restore(abstract)
    trainable, opt_state = state["trainable"], state["opt_state"]
    start_step, position = int(meta["step"]), int(meta["data_position"])
    log.info("resumed from step %d (data position %d)", start_step, position)

  num_steps = int(config.train.num_steps)
  metrics_log = MetricsLog(workdir)
  if jax.process_index() == 0:
    counts = methods.count_trainable(p.spec, boxed)
    metrics_log.write(
      start_step,
      "setup",
      {
        "trainable_params": counts["trainable"],
        "total_params": methods.count_params(nn.unbox(boxed)["params"]),
      },
    )

  def save(step_now: int):
    state = {"trainable": trainable, "opt_state": opt_state}
    store.save(step_now, state, {"step": step_now, "data_position": step_now})

  def run_eval(step_now: int) -> Dict[str, float]:
    merged = methods.merge_variables(trainable, frozen)
    results = evaluate(model, merged, data, config, p.mesh, p.spec)
    metrics_log.write(step_now, "eval", results)
    if store.best is not None:
      store.save_best(
        step_now,
        {"trainable": trainable, "opt_state": opt_state},
        {"step": step_now, "data_position": step_now},
        results,
      )
    if jax.process_index() == 0:
      shown = ", ".join(
        f"{k}={v:.2f}" for k, v in sorted(results.items()) if not k.endswith("num_examples")
      )
      print(f"[eval step {step_now}] {shown}", flush=True)
    return results

  log_every = int(config.train.log_every)
  ckpt_every = int(config.train.checkpoint_every)
  eval_enabled = bool(_get(config, "eval.enabled", True))
  eval_every = int(_get(config, "eval.every_steps", 0) or 0) if eval_enabled else 0
  batches = train_batches(config, data, position)
  progress = None
  if jax.process_index() == 0 and not _get(config, "train.quiet", False):
    from tqdm import tqdm

    progress = tqdm(total=num_steps, initial=start_step, unit="step", dynamic_ncols=True)
  window: List[Dict[str, Any]] = []
  last_good = store.latest_step()
  eval_results: Dict[str, float] = {}
  step = start_step
  if eval_enabled and _get(config, "eval.at_start", False) and start_step == 0:
    run_eval(0)  # the untrained starting point, so a curve shows what training changed
  t0, steps_in_window = time.time(), 0
  try:
    while step < num_steps:
      batch = partitioning.global_batch(next(batches), p.mesh)
      step_rng = jax.random.fold_in(jax.random.fold_in(rng, 2), step)
      trainable, opt_state, m = train_step(trainable, opt_state, frozen, batch, step_rng)
      step += 1
      steps_in_window += 1
      window.append(m)
      if progress is not None:
        progress.update(1)
      boundary = step % log_every == 0 or step % ckpt_every == 0 or step == num_steps
      if boundary:
        host = jax.device_get(window)
        losses = [float(x["loss"]) for x in host]
        if not all(math.isfinite(v) for v in losses):
          first_bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
          bad = step - len(window) + first_bad + 1
          raise FloatingPointError(
            f"non-finite training loss at step {bad}; stopped without saving it. The last "
            f"good checkpoint is step {last_good} in {os.path.join(workdir, 'checkpoints')}"
          )
        if step % log_every == 0 or step == num_steps:
          elapsed = time.time() - t0
          weight = sum(float(x["weight_sum"]) for x in host)
          values = {
            "loss": float(np.mean(losses)),
            "token_accuracy": sum(float(x["correct"]) for x in host) / max(weight, 1.0),
            "grad_norm": float(host[-1]["grad_norm"]),
            "learning_rate": float(schedule(step)),
            "steps_per_second": steps_in_window / max(elapsed, 1e-9),
          }
          metrics_log.write(step, "train", values)
          if progress is not None:
            progress.set_postfix(loss=f"{values['loss']:.4f}")
          t0, steps_in_window = time.time(), 0
        window = []
        if step % ckpt_every == 0 or step == num_steps:
          save(step)
          last_good = step
      if eval_every and (step % eval_every == 0 or step == num_steps):
        eval_results = run_eval(step)
  finally:
    if progress is not None:
      progress.close()
  if eval_enabled and (eval_every == 0 or step == start_step):
    eval_results = run_eval(step)
  store.close()
  size = ckpt_lib.directory_bytes(os.path.join(workdir, "checkpoints"))
  summary = {"step": step, "checkpoint_bytes": size, **eval_results}
  metrics_log.write(step, "final", summary)
  return {
    "trainable": trainable,
    "opt_state": opt_state,
    "frozen": frozen,
    "metrics": summary,
    "model": model,
    "spec": p.spec,
  }


def load_run_config(workdir: str):
  """The ConfigDict a run directory was trained with (its `config.json`)."""
  import ml_collections

  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} is not a run directory: no config.json")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def restore_for_eval(
  config, workdir: str, which: str = "latest", step: Optional[int] = None, with_data: bool = True
):
  """(model, variables, data, plan, step) of a run's checkpoint, ready for `evaluate`; with
  `with_data=False` the data is not rebuilt (data is None), e.g. to export on another machine."""
  p = plan(config)
  data = build_data(config, p.model_config) if with_data else None
  model = build_model(p.model_config, p.spec)
  variables = methods.init_variables(model, jax.random.PRNGKey(0), load_base(p))
  boxed = methods.abstract_variables(model)
  variables, _ = shard_variables(variables, boxed, p.mesh)
  trainable, frozen = methods.split_variables(p.spec, variables)
  tx, _ = optim.make_optimizer(_require(config, "optimizer"), _require(config, "schedule"))
  as_abstract = lambda t: jax.tree_util.tree_map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), t
  )
  train_sh = jax.tree_util.tree_map(lambda x: x.sharding, trainable)
  opt_abstract = jax.eval_shape(tx.init, trainable)
  opt_sh = partitioning.optimizer_state_shardings(opt_abstract, train_sh, p.mesh)
  opt_abstract = jax.tree_util.tree_map(
    lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), opt_abstract, opt_sh
  )
  store = ckpt_lib.RunCheckpoints(
    workdir,
    keep=int(_get(config, "train.keep_checkpoints", 2)),
    best_metric=_get(config, "eval.best_metric") or None,
  )
  state, meta = store.restore(
    {"trainable": as_abstract(trainable), "opt_state": opt_abstract}, step=step, which=which
  )
  store.close()
  return model, methods.merge_variables(state["trainable"], frozen), data, p, int(meta["step"])
