# pylint: disable=line-too-long
r"""GLUE as generation on the decoder-only Gemma: FT, LoRA, prompt tuning and AdaLink.

The task input is the prefix, the label words the continuation (the loss covers the label words
only); decoding continues from the prefix's cached keys and values.

Download-free smoke run (tiny random Gemma, the package's tiny SST-2, byte vocabulary):
  python scripts/train.py --config=configs/gemma.py:smoke --workdir=/tmp/gemma_smoke
  python scripts/train.py --config=configs/gemma.py:smoke,size=tiny2,method=lora --workdir=/tmp/g2

With a downloaded checkpoint (a Hugging Face Gemma / Gemma 2 directory and its tokenizer.model):
  python scripts/train.py --config=configs/gemma.py:gemma2_2b_adalink_r4,task=rte --workdir=/tmp/rte \
      --config.model.checkpoint=/ckpt/gemma-2-2b \
      --config.model.vocab_path=/ckpt/gemma-2-2b/tokenizer.model --config.data.data_dir=/data/glue_data

Variants are `smoke` or `{gemma_2b|gemma2_2b}_{adalink|lora|pt|ft}[_r{rank}]`, optionally followed
by `,task=NAME` (several: `task=rte+mrpc`), `,size=NAME`, `,method=NAME`, `,rank=N`.
"""

import re

from configs import common
from configs import glue

VARIANTS = ("smoke", re.compile(r"(gemma_2b|gemma2_2b)_(adalink|lora|pt|ft)(?:_r(\d+))?"))
OPTIONS = {
  "task": glue.OPTIONS["task"],
  "size": common.text("NAME"),
  "method": common.one_of(*common.METHODS),
  "rank": common.positive_int,
}
_VARIANTS_HELP = "smoke, or {gemma_2b|gemma2_2b}_{adalink|lora|pt|ft}[_rRANK]"
# Learning rates for a 2B decoder (the paper's T5 ones, FT lowered for the larger LM).
_PEAK_LR = {"adalink": 1e-3, "lora": 1e-3, "pt": 0.3, "ft": 2e-5}
_SMOKE_LR = {"adalink": 0.01, "lora": 0.01, "pt": 0.3, "ft": 3e-3}


def gemma_model(size: str, **overrides):
  """A Gemma model section: a Hugging Face checkpoint by default, or a seeded random base."""
  return common.section(
    **{
      "kind": "gemma",
      "size": size,
      "init": "checkpoint",  # or "random"
      "init_seed": 0,
      "checkpoint": "",  # Hugging Face Gemma / Gemma 2 directory
      "vocab": "sentencepiece",  # or "byte"
      "vocab_path": "",  # the checkpoint's tokenizer.model
      "vocab_extra_ids": 0,
      "dtype": "bfloat16",
      **overrides,
    }
  )


def smoke():
  """A tiny random Gemma learning the package's tiny SST-2 in 120 steps on CPU."""
  return common.training_config(
    model=gemma_model("tiny", init="random", vocab="byte", dtype="float32"),
    method=common.method_section("adalink", 8),
    data=glue.glue_data(
      ("sst2",),
      data_dir="{package}/data/fixtures/testdata/glue_tiny",
      inputs_length=64,
      targets_length=12,
      batch_size=16,
    ),
    optimizer=common.optimizer_section(),
    schedule=common.schedule_section(peak_lr=_SMOKE_LR["adalink"], warmup_steps=10),
    train=common.train_section(num_steps=120, log_every=20, checkpoint_every=60),
    eval=common.eval_section(every_steps=60, batch_size=16, max_decode_len=12),
  )


def checkpoint_row(size: str, method: str, rank) -> object:
  """A GLUE row on a downloaded Gemma: 20k steps of 32, evaluated every 1k."""
  c = glue.base_config()
  c.model = gemma_model(size)
  c.method = common.method_section(method, int(rank) if rank else 4)
  c.schedule.peak_lr = _PEAK_LR[method]
  return c


def get_config(arg: str = "smoke"):
  a = common.parse_arg(
    arg,
    config_file="configs/gemma.py",
    variants=VARIANTS,
    options=OPTIONS,
    variants_help=_VARIANTS_HELP,
  )
  if a.variant == "smoke":
    c = smoke()
  else:
    size, method, rank = a.match.groups()
    if rank is not None and method in ("pt", "ft"):
      a.refuse(f"variant {a.variant!r}: method {method!r} takes no rank")
    c = checkpoint_row(size, method, rank)
  if "method" in a or "rank" in a:
    name = a.get("method", c.method.name)
    if "rank" in a and name in ("pt", "ft"):
      a.refuse(f"method {name!r} takes no rank")
    c.method = common.method_section(name, a.get("rank", int(c.method.get("rank", 4))))
    c.schedule.peak_lr = (_SMOKE_LR if a.variant == "smoke" else _PEAK_LR)[name]
  if "task" in a:
    c.data.tasks = a.get("task")
  if "size" in a:
    c.model.size = a.get("size")
  return c
