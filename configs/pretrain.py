# pylint: disable=line-too-long
r"""Pretraining a T5 from plain text: span corruption, then optional LM adaptation (prefix LM).

CPU smoke run (tiny model, byte vocabulary with 100 sentinels, ../shared's text, ~1-2 minutes;
the validation loss is evaluated before and after training):
  python scripts/train.py --config=configs/pretrain.py:smoke --workdir=/tmp/pt_smoke

T5 1.1 mini / small dimensions with the real T5 vocabulary (bf16 activations, packing on); on a
GPU or TPU slice only the command changes, e.g. --config.sharding.mesh='(4,2)':
  python scripts/train.py --config=configs/pretrain.py:mini --workdir=/tmp/pt_mini
  python scripts/train.py --config=configs/pretrain.py:small --workdir=/tmp/pt_small

LM adaptation (Lester et al. 2021: the extra prefix-LM steps of the paper's "T5" checkpoints),
continuing from a checkpoint exported by scripts/export.py:
  python scripts/train.py --config=configs/pretrain.py:lm_adapt,size=small --workdir=/tmp/lm \
      --config.model.checkpoint=/tmp/pt_small_hf

On a machine without TensorFlow, train from batches saved where it is (scripts/pretokenize.py):
  python scripts/pretokenize.py --config=configs/pretrain.py:mini --out=/data/mini_batches \
      --train_batches=2000 --eval_batches=20
  python scripts/train.py --config=configs/pretrain.py:mini,batches=/data/mini_batches --workdir=DIR

Options: `,size=NAME`, `,objective=span_corruption|prefix_lm`, `,batches=DIR`. Evaluate a
checkpoint's validation loss and token accuracy with `python scripts/eval.py --workdir=DIR`.
"""

import os

import ml_collections

from configs import glue as glue_configs

_HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(_HERE, "..", "..", "shared")
VARIANTS = ("smoke", "mini", "small", "lm_adapt")


def base_config() -> ml_collections.ConfigDict:
  c = glue_configs.base_config()
  c.model.size = "small"
  c.model.init = "random"
  c.model.vocab = "sentencepiece"
  c.model.vocab_path = os.path.join(SHARED, "models", "t5-vocab", "spiece.model")
  c.model.vocab_extra_ids = 100  # the sentinels span corruption draws from the top
  c.model.dtype = "bfloat16"
  c.model.dropout_rate = 0.0  # T5 1.1 pretrains without dropout
  c.method = glue_configs.method_section("ft", 0)

  c.data = ml_collections.ConfigDict()
  c.data.kind = "pretrain"
  c.data.text_dir = os.path.join(SHARED, "data", "text")
  c.data.objective = "span_corruption"
  c.data.validation_fraction = 0.01  # documents held out by a fixed hash of their text
  c.data.inputs_length = 512
  c.data.targets_length = 0  # 0: computed from the inputs length (114 for 512)
  c.data.batch_size = 128
  c.data.pack = True
  c.data.host_split = "shard"

  c.schedule.peak_lr = 1e-2
  c.schedule.warmup_steps = 10_000
  c.train.num_steps = 100_000
  c.train.log_every = 100
  c.train.checkpoint_every = 5000
  c.eval.at_start = True
  c.eval.every_steps = 5000
  c.eval.batch_size = 128
  c.eval.max_batches = 20
  c.eval.best_metric = ""
  return c


def get_config(arg: str = "smoke") -> ml_collections.ConfigDict:
  parts = [a for a in (arg or "").split(",") if a]
  variant = parts[0] if parts else "smoke"
  if variant not in VARIANTS:
    raise ValueError(f"configs/pretrain.py: unknown variant {variant!r}; variants: {VARIANTS}")
  opts = {}
  for kv in parts[1:]:
    k, _, v = kv.partition("=")
    if k not in ("size", "objective", "batches") or not v:
      raise ValueError(
        f"configs/pretrain.py: bad option {kv!r}; options: size=NAME, "
        f"objective=span_corruption|prefix_lm, batches=DIR"
      )
    opts[k] = v
  c = base_config()
  if variant == "smoke":
    c.model.size = "tiny"
    c.model.vocab = "byte"
    c.model.vocab_path = ""
    c.model.dtype = "float32"
    c.data.inputs_length = 64
    c.data.batch_size = 16
    c.schedule.peak_lr = 1e-2
    c.schedule.warmup_steps = 20
    c.train.num_steps = 150
    c.train.log_every = 25
    c.train.checkpoint_every = 150
    c.eval.every_steps = 0
    c.eval.batch_size = 16
    c.eval.max_batches = 8
  elif variant == "mini":
    c.model.size = "mini"
    c.data.batch_size = 64
  elif variant == "lm_adapt":
    c.model.init = "checkpoint"
    c.data.objective = "prefix_lm"
    c.data.targets_length = 114
    c.schedule.peak_lr = 1e-3
    c.schedule.warmup_steps = 1000
    c.train.num_steps = 100_000
  if "size" in opts:
    c.model.size = opts["size"]
  if "objective" in opts:
    c.data.objective = opts["objective"]
  # The pipeline's settings above stay as the record of what the saved batches should match.
  c.data.batch_dir = opts.get("batches", "")
  if "batches" in opts:
    c.data.kind = "batch_files"
  return c
