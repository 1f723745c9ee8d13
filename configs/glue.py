# pylint: disable=line-too-long
r"""GLUE fine-tuning: FT, LoRA, prompt tuning and AdaLink on T5 1.1 / FLAN-T5.

Download-free smoke run (tiny random T5, the project's own tiny SST-2, ~1 minute on 2 CPUs):
  python scripts/train.py --config=configs/glue.py:smoke --workdir=/tmp/w
  python scripts/train.py --config=configs/glue.py:smoke,task=sst2+cola,adapters=per_task \
      --workdir=/tmp/w_per_task

The main job: AdaLink on the pretrained base that ships in the package (adalink/zoo/t5_nano_en),
trained and scored on the real SST-2 in ../shared/data/glue (a few minutes on 2 CPUs):
  python scripts/train.py --config=configs/glue.py:zoo --workdir=/tmp/zoo_sst2
  python scripts/train.py --config=configs/glue.py:zoo,method=ft --workdir=/tmp/zoo_sst2_ft

A paper row (needs a downloaded checkpoint and glue_data/):
  python scripts/train.py --config=configs/glue.py:flan_adalink_r4,task=rte --workdir=/tmp/rte \
      --config.model.checkpoint=/ckpt/flan-t5-xxl --config.data.data_dir=/data/glue_data

Variants are `[multitask_]{flan|t5}_{adalink|lora|pt|ft}[_r{rank}]`, optionally followed by
`,task=NAME` (several: `task=rte+mrpc`), `,size=NAME`, `,method=NAME`, `,rank=N`,
`,adapters=per_task` (one AdaLink per task of a mixture; multi-task rows share one by default, as
the paper counts it), `,tasks=available` (multi-task: only the tasks whose train file the data
folder holds; otherwise a missing one is an error naming it); e.g. flan_adalink_r4 (Table 5), t5_adalink_r256,
multitask_flan_adalink_r256, multitask_t5_adalink_r1024, flan_lora_r4, t5_lora_r16, flan_pt,
t5_ft. `flan` vs `t5` chooses the checkpoint family (instruction-tuned or raw T5 1.1 LM-adapted)
and the paper's defaults for it; sizes default to XXL. Every field can be overridden on the
command line, e.g. --config.method.rank=8.
"""

import os
import re

import ml_collections

from adalink.data.tasks import glue_spec
from configs import common

SHARED = common.SHARED
GLUE_TASKS = glue_spec.GLUE_TASKS
# The tasks whose train split the shared glue/ folder has (MNLI, QQP, QNLI-train are absent):
# what a multi-task variant with `,tasks=available` trains on there.
SHARED_TRAIN_TASKS = ("cola", "sst2", "mrpc", "stsb", "rte")

# Paper defaults: single-task FLAN r=4, T5 r=256; multi-task FLAN 256, T5 1024 (Tables 5, 6).
_DEFAULT_RANK = {("flan", False): 4, ("t5", False): 256, ("flan", True): 256, ("t5", True): 1024}
_LORA_RANK = {"flan": 4, "t5": 16}
_PEAK_LR = {"adalink": 1e-3, "lora": 1e-3, "pt": 0.3, "ft": 1e-4}
_NO_RANK = ("pt", "ft")
VARIANTS = ("smoke", "zoo", re.compile(r"(multitask_)?(flan|t5)_(adalink|lora|pt|ft)(?:_r(\d+))?"))
OPTIONS = {
  "task": common.joined(common.one_of(*GLUE_TASKS)),
  "size": common.text("NAME"),
  "method": common.one_of(*common.METHODS),
  "rank": common.positive_int,
  # per_task: one AdaLink per task of the mixture, routed by each example's task id (rows unpacked)
  "adapters": common.one_of("shared", "per_task"),
  # available: train only on the listed tasks whose train file data.data_dir holds (this
  # project's shared folder lacks MNLI, QQP and QNLI's); otherwise a missing file is an error.
  "tasks": common.one_of("all", "available"),
}
_VARIANTS_HELP = (
  "smoke, zoo, or [multitask_]{flan|t5}_{adalink|lora|pt|ft}[_rRANK] (e.g. flan_adalink_r4)"
)

method_section = common.method_section


def glue_data(tasks=("rte",), **overrides) -> ml_collections.ConfigDict:
  """GLUE from the glue_data/ TSV layout (or TFDS), T5's text-to-text form."""
  return common.section(
    **{
      "kind": "glue",
      "source": "tsv",  # or "tfds"
      "data_dir": os.path.join(SHARED, "data", "glue"),
      "tfds_data_dir": "",
      "tasks": tuple(tasks),
      "mixture_cap": 2**19,  # examples per task at most, in a multi-task mixture's rates
      "inputs_length": 256,
      "targets_length": 8,
      "batch_size": 32,
      "pack": False,
      "host_split": "shard",
      "on_bad_row": "error",
      # True: drop the listed tasks that have no train file (source 'tsv'), saying which.
      "only_tasks_with_train_file": False,
      **overrides,
    }
  )


def base_config() -> ml_collections.ConfigDict:
  """A paper row on RTE: T5 XXL from a checkpoint, 20k steps, evaluated every 1k."""
  return common.training_config(
    model=common.t5_model("xxl"),
    method=method_section("adalink", 4),
    data=glue_data(),
    optimizer=common.optimizer_section(),
    schedule=common.schedule_section(peak_lr=1e-3, warmup_steps=1000),
    train=common.train_section(num_steps=20_000, log_every=100, checkpoint_every=1000),
    eval=common.eval_section(every_steps=1000, batch_size=32, max_decode_len=8),
  )


def smoke() -> ml_collections.ConfigDict:
  """A tiny random T5 learning the package's tiny SST-2 in 120 steps (about a minute on CPU)."""
  return common.training_config(
    model=common.t5_model("tiny", init="random", vocab="byte", dtype="float32", dropout_rate=0.0),
    method=method_section("adalink", 8),
    data=glue_data(
      ("sst2",),
      data_dir="{package}/data/fixtures/testdata/glue_tiny",
      inputs_length=64,
      targets_length=12,
      batch_size=16,
    ),
    optimizer=common.optimizer_section(),
    schedule=common.schedule_section(peak_lr=0.01, warmup_steps=10),
    train=common.train_section(num_steps=120, log_every=20, checkpoint_every=60),
    eval=common.eval_section(every_steps=60, batch_size=16, max_decode_len=12),
  )


ZOO_BASE = "{package}/zoo/t5_nano_en"
# Learning rates on the small shipped base (the paper's are for XXL models).
_ZOO_PEAK_LR = {"adalink": 1e-2, "lora": 1e-2, "pt": 0.3, "ft": 1e-3}
# (inputs, targets) lengths in the shipped base's vocabulary: inputs hold 99% of a task's training
# rows uncut (RTE's hypothesis comes last, so its long premises get 256), targets the longest label
# and its EOS ("not_equivalent" is 7 ids, an STS-B score 4).
_ZOO_LENGTHS = {
  "sst2": (64, 4),
  "cola": (64, 8),
  "mrpc": (128, 8),
  "rte": (256, 8),
  "stsb": (128, 8),
}
_ZOO_DEFAULT_LENGTHS = (128, 8)


def zoo() -> ml_collections.ConfigDict:
  """AdaLink r=64 on the shipped pretrained base (T5 1.1 layout, d_model 128, its own 8k
  vocabulary) on the real SST-2: 600 steps of 32, scored on the whole dev set (872 sentences)."""
  return common.training_config(
    model=common.t5_model(
      "nano",
      checkpoint=ZOO_BASE,
      vocab_path=ZOO_BASE + "/spiece.model",
      vocab_extra_ids=100,
      dtype="float32",
      dropout_rate=0.0,
    ),
    method=method_section("adalink", 64),
    data=glue_data(("sst2",), inputs_length=64, targets_length=4, batch_size=32),
    optimizer=common.optimizer_section(),
    schedule=common.schedule_section(peak_lr=_ZOO_PEAK_LR["adalink"], warmup_steps=50),
    train=common.train_section(num_steps=600, log_every=50, checkpoint_every=300),
    eval=common.eval_section(every_steps=300, batch_size=128, max_decode_len=4),
  )


def paper_row(family: str, method: str, rank, multitask: bool) -> ml_collections.ConfigDict:
  """`[multitask_]{family}_{method}[_r{rank}]`: the paper's rank and learning rate for the
  checkpoint family. Multi-task rows train one model on all eight GLUE tasks (`,tasks=available`
  keeps those whose train file `data.data_dir` holds) with one AdaLink shared by every task, as
  the paper counts it (Table 5: 0.5M at r=256, 2M at r=1024); `,adapters=per_task` routes one
  adapter per task instead."""
  c = base_config()
  default_rank = _LORA_RANK[family] if method == "lora" else _DEFAULT_RANK[(family, multitask)]
  c.method = method_section(method, int(rank) if rank else default_rank)
  c.schedule.peak_lr = _PEAK_LR[method]
  if multitask:
    c.data.tasks = GLUE_TASKS
  return c


def get_config(arg: str = "smoke") -> ml_collections.ConfigDict:
  a = common.parse_arg(
    arg,
    config_file="configs/glue.py",
    variants=VARIANTS,
    options=OPTIONS,
    variants_help=_VARIANTS_HELP,
  )
  if a.variant == "smoke":
    c = smoke()
  elif a.variant == "zoo":
    c = zoo()
  else:
    multitask, family, method, rank = a.match.groups()
    if rank is not None and method in _NO_RANK:
      a.refuse(f"variant {a.variant!r}: method {method!r} takes no rank")
    c = paper_row(family, method, rank, bool(multitask))
  if "method" in a or "rank" in a:
    name = a.get("method", c.method.name)
    if "rank" in a and name in _NO_RANK:
      a.refuse(f"method {name!r} takes no rank")
    per_task = bool(c.method.get("per_task", False))
    c.method = method_section(name, a.get("rank", int(c.method.get("rank", 4))))
    if per_task and name == "adalink":
      c.method.per_task = True  # a rank change keeps the variant's per-task layout
    if a.variant == "zoo":
      c.schedule.peak_lr = _ZOO_PEAK_LR[name]
    elif a.variant != "smoke":
      c.schedule.peak_lr = _PEAK_LR[name]
  if "task" in a:
    c.data.tasks = a.get("task")
    if a.variant == "zoo":
      lengths = [_ZOO_LENGTHS.get(t, _ZOO_DEFAULT_LENGTHS) for t in c.data.tasks]
      c.data.inputs_length = max(n for n, _ in lengths)
      c.data.targets_length = c.eval.max_decode_len = max(n for _, n in lengths)
  if "size" in a:
    c.model.size = a.get("size")
  if a.get("tasks") == "available":
    c.data.only_tasks_with_train_file = True
  if a.get("adapters") == "per_task":
    if c.method.name != "adalink" or len(c.data.tasks) < 2:
      a.refuse("adapters=per_task needs method adalink and two or more tasks (task=A+B)")
    c.method.per_task = True
    c.data.pack = False
  return c
