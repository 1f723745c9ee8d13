# pylint: disable=line-too-long
r"""Pretraining a T5 from plain text: span corruption, then optional LM adaptation (prefix LM).

CPU smoke run (tiny model, byte vocabulary with 100 sentinels, ../shared's text, ~1-2 minutes;
the validation loss is evaluated before and after training):
  python scripts/train.py --config=configs/pretrain.py:smoke --workdir=/tmp/pt_smoke

T5 1.1 mini / small dimensions with the real T5 vocabulary (bf16 activations, packing on); on a
GPU or TPU slice only the command changes, e.g. --config.sharding.mesh='(4,2)':
  python scripts/train.py --config=configs/pretrain.py:mini --workdir=/tmp/pt_mini
  python scripts/train.py --config=configs/pretrain.py:small --workdir=/tmp/pt_small

The shipped base's recipe (adalink/zoo/t5_nano_en, d_model 128, 4+4 layers, an 8k SentencePiece
vocabulary trained on the corpus by scripts/train_vocab.py; float32, batch 32 x 128 input tokens,
parameter-scaled Adafactor); the base itself was made in stages, listed in its README:
  python scripts/train_vocab.py --out=/tmp/spm8k
  python scripts/train.py --config=configs/pretrain.py:nano --workdir=/tmp/pt_nano \
      --config.model.vocab_path=/tmp/spm8k/spiece.model

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

from configs import common

SHARED = common.SHARED
VARIANTS = ("smoke", "nano", "mini", "small", "lm_adapt")
OPTIONS = {
  "size": common.text("NAME"),
  "objective": common.one_of("span_corruption", "prefix_lm"),
  "batches": common.text("DIR"),
}


def pretrain_data(**overrides) -> ml_collections.ConfigDict:
  """Plain text (one document per file or line) turned into span-corruption or prefix-LM
  examples, packed."""
  return common.section(
    **{
      "kind": "pretrain",
      "text_dir": os.path.join(SHARED, "data", "text"),
      "objective": "span_corruption",  # or prefix_lm
      "validation_fraction": 0.01,  # documents held out by a fixed hash of their text
      "inputs_length": 512,
      "targets_length": 0,  # 0: computed from the inputs length (114 for 512)
      "batch_size": 128,
      "pack": True,
      "host_split": "shard",
      "batch_dir": "",  # saved batches to train from instead (data.kind batch_files)
      **overrides,
    }
  )


def base_config() -> ml_collections.ConfigDict:
  """T5 1.1 small dims from a random init with the T5 vocabulary and 100 sentinels, 100k steps;
  the validation loss is evaluated at the start and every 5k steps."""
  return common.training_config(
    model=common.t5_model(
      "small",
      init="random",
      vocab_path=os.path.join(SHARED, "models", "t5-vocab", "spiece.model"),
      vocab_extra_ids=100,  # the sentinels span corruption draws from the top
      dropout_rate=0.0,  # T5 1.1 pretrains without dropout
    ),
    method=common.ft_method(),
    data=pretrain_data(),
    optimizer=common.optimizer_section(),
    schedule=common.schedule_section(peak_lr=1e-2, warmup_steps=10_000),
    train=common.train_section(num_steps=100_000, log_every=100, checkpoint_every=5000),
    eval=common.eval_section(
      every_steps=5000,
      batch_size=128,
      max_decode_len=8,
      at_start=True,
      max_batches=20,
      best_metric="",
    ),
  )


def get_config(arg: str = "smoke") -> ml_collections.ConfigDict:
  a = common.parse_arg(
    arg, config_file="configs/pretrain.py", variants=VARIANTS, options=OPTIONS, default="smoke"
  )
  c = base_config()
  if a.variant == "smoke":
    c.model.update(size="tiny", vocab="byte", vocab_path="", dtype="float32")
    c.data.update(inputs_length=64, batch_size=16)
    c.schedule.update(peak_lr=1e-2, warmup_steps=20)
    c.train.update(num_steps=150, log_every=25, checkpoint_every=150)
    c.eval.update(every_steps=0, batch_size=16, max_batches=8)
  elif a.variant == "nano":
    # The shipped base's recipe: float32 (bf16 matmuls are not faster on CPUs), 32 rows of 128
    # input tokens (0.6 steps/s on 2 cores, 3x the rate at 256; GLUE's short tasks fit), and T5's
    # parameter-scaled Adafactor at 1e-2: without the scaling every weight takes the same absolute
    # step, and the std-1 token table hardly moved in 2,100 steps at 1.5e-3.
    c.model.update(size="nano", vocab_path="{package}/zoo/t5_nano_en/spiece.model")
    c.model.dtype = "float32"
    c.data.update(inputs_length=128, batch_size=32)
    c.optimizer.multiply_by_parameter_scale = True
    c.schedule.update(peak_lr=1e-2, warmup_steps=250)
    c.train.update(num_steps=20_000, log_every=25, checkpoint_every=100)
    c.eval.update(every_steps=100, batch_size=32, max_batches=8)
  elif a.variant == "mini":
    c.model.size = "mini"
    c.data.batch_size = 64
  elif a.variant == "lm_adapt":
    c.model.init = "checkpoint"
    c.data.update(objective="prefix_lm", targets_length=114)
    c.schedule.update(peak_lr=1e-3, warmup_steps=1000)
  if "size" in a:
    c.model.size = a.get("size")
  if "objective" in a:
    c.data.objective = a.get("objective")
  if "batches" in a:
    # The pipeline's settings above stay as the record of what the saved batches should match.
    c.data.update(kind="batch_files", batch_dir=a.get("batches"))
  return c
