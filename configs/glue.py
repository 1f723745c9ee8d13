# pylint: disable=line-too-long
r"""GLUE fine-tuning: FT, LoRA, prompt tuning and AdaLink on T5 1.1 / FLAN-T5.

Download-free smoke run (tiny random T5, the project's own tiny SST-2, ~1 minute on 2 CPUs):
  python scripts/train.py --config=configs/glue.py:smoke --workdir=/tmp/w

A paper row (needs a downloaded checkpoint and glue_data/):
  python scripts/train.py --config=configs/glue.py:flan_adalink_r4,task=rte --workdir=/tmp/rte \
      --config.model.checkpoint=/ckpt/flan-t5-xxl --config.data.data_dir=/data/glue_data

Variants are `[multitask_]{flan|t5}_{adalink|lora|pt|ft}[_r{rank}]`, optionally followed by
`,task=NAME` (several: `task=rte+mrpc`), `,size=NAME`, `,method=NAME`, `,rank=N`; e.g. flan_adalink_r4 (Table 5), t5_adalink_r256,
multitask_flan_adalink_r256, multitask_t5_adalink_r1024, flan_lora_r4, t5_lora_r16, flan_pt,
t5_ft. `flan` vs `t5` chooses the checkpoint family (instruction-tuned or raw T5 1.1 LM-adapted)
and the paper's defaults for it; sizes default to XXL. Every field can be overridden on the
command line, e.g. --config.method.rank=8.
"""

import os
import re

import ml_collections

_HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(_HERE, "..", "..", "shared")
GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
# The tasks whose train split the shared glue/ folder has (MNLI, QQP, QNLI-train are absent).
SHARED_TRAIN_TASKS = ("cola", "sst2", "mrpc", "stsb", "rte")

# Paper defaults: single-task FLAN r=4, T5 r=256; multi-task FLAN 256, T5 1024 (Tables 5, 6).
_DEFAULT_RANK = {("flan", False): 4, ("t5", False): 256, ("flan", True): 256, ("t5", True): 1024}
_LORA_RANK = {"flan": 4, "t5": 16}
_PEAK_LR = {"adalink": 1e-3, "lora": 1e-3, "pt": 0.3, "ft": 1e-4}
_VARIANT = re.compile(r"^(multitask_)?(flan|t5)_(adalink|lora|pt|ft)(?:_r(\d+))?$")


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.size = "xxl"
  c.model.init = "checkpoint"  # or "random" (a seeded random base, for smoke runs)
  c.model.init_seed = 0
  c.model.checkpoint = ""  # Hugging Face T5 dir or T5X checkpoint
  c.model.vocab = "sentencepiece"
  c.model.vocab_path = ""  # spiece.model of the checkpoint
  c.model.dropout_rate = 0.1
  c.model.dtype = "bfloat16"

  c.method = ml_collections.ConfigDict({"name": "adalink", "rank": 4})

  c.data = ml_collections.ConfigDict()
  c.data.source = "tsv"  # or "tfds"
  c.data.data_dir = os.path.join(SHARED, "data", "glue")
  c.data.tfds_data_dir = ""
  c.data.tasks = ("rte",)
  c.data.mixture_cap = 2**19
  c.data.inputs_length = 256
  c.data.targets_length = 8
  c.data.batch_size = 32
  c.data.pack = False
  c.data.host_split = "shard"
  c.data.on_bad_row = "error"

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adafactor"
  c.optimizer.decay_rate = 0.8
  c.optimizer.grad_clip_norm = 0.0
  c.optimizer.grad_accum_steps = 1

  c.schedule = ml_collections.ConfigDict()
  c.schedule.peak_lr = 1e-3
  c.schedule.warmup_steps = 1000

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 20_000
  c.train.log_every = 100
  c.train.checkpoint_every = 1000
  c.train.keep_checkpoints = 2
  c.train.label_smoothing = 0.0
  c.train.quiet = False

  c.eval = ml_collections.ConfigDict()
  c.eval.enabled = True
  c.eval.every_steps = 1000  # and at the end; 0 = only at the end
  c.eval.split = "validation"
  c.eval.batch_size = 32
  c.eval.max_examples = 0  # 0 = the whole split
  c.eval.decode = "greedy"
  c.eval.beam_size = 4
  c.eval.alpha = 0.6
  c.eval.max_decode_len = 8
  c.eval.best_metric = "average"
  c.eval.best_mode = "max"

  c.sharding = ml_collections.ConfigDict()
  c.sharding.mesh = (-1, 1)  # (data, model); -1 takes the remaining devices
  c.sharding.distributed = "auto"  # initialise jax.distributed when the environment asks
  return c


def method_section(name: str, rank: int) -> ml_collections.ConfigDict:
  if name == "adalink":
    return ml_collections.ConfigDict(
      {
        "name": "adalink",
        "rank": rank,
        "streams": ("text",),
        "per_task": False,
        "activation": "linear",
        "dropout_rate": 0.1,
      }
    )
  if name == "lora":
    return ml_collections.ConfigDict(
      {
        "name": "lora",
        "rank": rank,
        "targets": ("query", "key", "value", "out", "wi", "wi_0", "wi_1", "wo"),
        "alpha": float(rank),
        "lora_decoder": False,
        "dropout_rate": 0.0,
      }
    )
  if name == "pt":
    return ml_collections.ConfigDict(
      {
        "name": "pt",
        "num_prompts": 64,
        "reparam_hidden": 512,
        "prompt_init": "vocab",
        "dropout_rate": 0.05,
      }
    )
  return ml_collections.ConfigDict({"name": "ft"})


def smoke() -> ml_collections.ConfigDict:
  c = base_config()
  c.model.size = "tiny"
  c.model.init = "random"
  c.model.vocab = "byte"
  c.model.dtype = "float32"
  c.model.dropout_rate = 0.0
  c.method = method_section("adalink", 8)
  c.data.data_dir = "{package}/data/testdata/glue_tiny"
  c.data.tasks = ("sst2",)
  c.data.inputs_length = 64
  c.data.targets_length = 12
  c.data.batch_size = 16
  c.schedule.peak_lr = 0.01
  c.schedule.warmup_steps = 10
  c.train.num_steps = 120
  c.train.log_every = 20
  c.train.checkpoint_every = 60
  c.eval.every_steps = 60
  c.eval.batch_size = 16
  c.eval.max_decode_len = 12
  return c


def _parse(arg: str):
  parts = [a for a in (arg or "").split(",") if a]
  if not parts:
    raise ValueError(_usage("no variant given"))
  variant, opts = parts[0], {}
  for kv in parts[1:]:
    if "=" not in kv:
      raise ValueError(_usage(f"option {kv!r} is not key=value"))
    k, v = kv.split("=", 1)
    if k not in ("task", "size", "method", "rank"):
      raise ValueError(_usage(f"unknown option {k!r}"))
    opts[k] = v
  return variant, opts


def _usage(why: str) -> str:
  return (
    f"configs/glue.py: {why}. Variants: smoke, or [multitask_]{{flan|t5}}_"
    f"{{adalink|lora|pt|ft}}[_rRANK] with optional ,task=NAME ,size=NAME ,method=NAME ,rank=N "
    f"(e.g. flan_adalink_r4,task=rte)"
  )


def get_config(arg: str = "smoke") -> ml_collections.ConfigDict:
  variant, opts = _parse(arg)
  if variant == "smoke":
    c = smoke()
  else:
    m = _VARIANT.match(variant)
    if not m:
      raise ValueError(_usage(f"unknown variant {variant!r}"))
    multitask, family, method, rank = bool(m.group(1)), m.group(2), m.group(3), m.group(4)
    if rank is not None and method in ("pt", "ft"):
      raise ValueError(_usage(f"variant {variant!r}: method {method!r} takes no rank"))
    c = base_config()
    default_rank = _LORA_RANK[family] if method == "lora" else _DEFAULT_RANK[(family, multitask)]
    c.method = method_section(method, int(rank) if rank else default_rank)
    c.schedule.peak_lr = _PEAK_LR[method]
    if multitask:
      c.data.tasks = SHARED_TRAIN_TASKS
      if method == "adalink":
        c.method.per_task = True  # one adapter per task, routed by each example's task id
  if "method" in opts or "rank" in opts:
    name = opts.get("method", c.method.name)
    if name not in _PEAK_LR:
      raise ValueError(_usage(f"unknown method {name!r}"))
    if "rank" in opts and name in ("pt", "ft"):
      raise ValueError(_usage(f"method {name!r} takes no rank"))
    rank = int(opts["rank"]) if "rank" in opts else int(c.method.get("rank", 4))
    c.method = method_section(name, rank)
    if variant != "smoke":
      c.schedule.peak_lr = _PEAK_LR[name]
  if "task" in opts:
    tasks = tuple(t for t in opts["task"].split("+") if t)
    for t in tasks:
      if t not in GLUE_TASKS:
        raise ValueError(_usage(f"unknown task {t!r}; GLUE tasks: {GLUE_TASKS}"))
    c.data.tasks = tasks
  if "size" in opts:
    c.model.size = opts["size"]
  return c
