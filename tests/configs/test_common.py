"""The shared config parser and sections: `file.py:variant,key=value` parsed one way everywhere,
bad arguments refused with the config file and the bad token named; every training config
carries every field the trainer reads; the GLUE task list comes from the data layer."""

import importlib
import os
import re

import pytest

import configs
from configs import common
from configs import glue as glue_configs
from tests.configs.test_config_values import GOLDEN, build

CONFIGS_DIR = os.path.dirname(os.path.abspath(configs.__file__))
TRAINING_CONFIGS = ("glue", "captioning", "pretrain")


def _parse(arg, **kw):
  kw.setdefault("config_file", "configs/x.py")
  kw.setdefault("variants", ("base", re.compile(r"(lora|adalink)_r(\d+)")))
  kw.setdefault(
    "options",
    {
      "steps": common.positive_int,
      "mode": common.one_of("a", "b"),
      "tasks": common.joined(common.one_of("rte", "mrpc")),
      "name": common.text("NAME"),
    },
  )
  return common.parse_arg(arg, **kw)


def test_options_are_typed_and_patterns_return_their_match():
  a = _parse("adalink_r16,steps=12,mode=b,tasks=rte+mrpc,name=x=y")
  assert a.variant == "adalink_r16" and a.match.groups() == ("adalink", "16")
  assert dict(a.options) == {"steps": 12, "mode": "b", "tasks": ("rte", "mrpc"), "name": "x=y"}
  assert "steps" in a and "other" not in a and a.get("other", 3) == 3
  plain = _parse("base")
  assert plain.variant == "base" and plain.match is None and dict(plain.options) == {}


def test_empty_argument_takes_the_default_or_is_refused():
  assert _parse("", default="base").variant == "base"
  assert _parse(None, default="base").variant == "base"
  with pytest.raises(ValueError, match=r"configs/x\.py: no variant given"):
    _parse("")


@pytest.mark.parametrize(
  "arg,why",
  [
    ("bogus", "unknown variant 'bogus'"),
    ("lora_rx", "unknown variant 'lora_rx'"),  # a pattern must match the whole variant
    ("steps=3", "the variant comes first, got option 'steps=3'"),
    ("base,color=red", "unknown option 'color'"),
    ("base,steps", "option 'steps' is not key=value"),
    ("base,steps=", "option 'steps' has an empty value"),
    ("base,steps=2,steps=3", "option 'steps' given twice"),
    ("base,steps=0", "option steps: must be a positive integer, got '0'"),
    ("base,steps=x", "option steps: must be a positive integer, got 'x'"),
    ("base,mode=c", "option mode: must be one of a|b, got 'c'"),
    ("base,tasks=rte+wnli", "option tasks: must be one of rte|mrpc, got 'wnli'"),
    ("base,tasks=+", "option tasks: names no item, got '\\+'"),
  ],
)
def test_bad_arguments_name_the_file_and_the_token(arg, why):
  with pytest.raises(ValueError, match=r"^configs/x\.py: " + why) as e:
    _parse(arg)
  message = str(e.value)
  assert repr(arg) in message  # the whole argument, for context
  assert "Variants: base, /(lora|adalink)_r(\\d+)/" in message
  assert "steps=N" in message and "mode=a|b" in message and "name=NAME" in message


# Arguments every config refused before the shared parser, and still refuses, with the token.
REFUSED = [
  ("glue", "", "no variant given"),
  ("glue", "bogus", "unknown variant 'bogus'"),
  ("glue", "t5_adapter_r4", "unknown variant 't5_adapter_r4'"),
  ("glue", "flan_adalink_r4,task=wnli", "got 'wnli'"),
  ("glue", "flan_adalink_r4,color=red", "unknown option 'color'"),
  ("glue", "flan_adalink_r4,rte", "option 'rte' is not key=value"),
  ("glue", "flan_pt_r4", "variant 'flan_pt_r4': method 'pt' takes no rank"),
  ("glue", "flan_pt,rank=4", "method 'pt' takes no rank"),
  ("glue", "flan_ft,rank=2", "method 'ft' takes no rank"),
  ("glue", "smoke,method=adapter", "got 'adapter'"),
  ("glue", "flan_adalink,rank=x", "option rank: must be a positive integer, got 'x'"),
  ("captioning", "", "no variant given"),
  ("captioning", "bogus", "unknown variant 'bogus'"),
  ("captioning", "ft_r4", "method 'ft' takes no rank"),
  ("captioning", "lora", "lora needs a rank, e.g. lora_r16"),
  ("captioning", "adalink_r64,data=imagenet", "got 'imagenet'"),
  ("glue", "smoke,adapters=per_task", "adapters=per_task needs method adalink and two or more"),
  ("glue", "smoke,task=sst2+cola,method=lora,adapters=per_task", "needs method adalink"),
  ("glue", "smoke,adapters=many", "got 'many'"),
  ("captioning", "adalink_r64,color=red", "unknown option 'color'"),
  ("captioning", "adalink_r64,size=", "option 'size' has an empty value"),
  ("captioning", "adalink_r64,data", "option 'data' is not key=value"),
  ("pretrain", "bogus", "unknown variant 'bogus'"),
  ("pretrain", "mini,size=", "option 'size' has an empty value"),
  ("pretrain", "mini,color=red", "unknown option 'color'"),
  ("pretrain", "mini,objective", "option 'objective' is not key=value"),
  ("pretrain", "mini,objective=mlm", "got 'mlm'"),
  ("pretrain", "mini,batches=", "option 'batches' has an empty value"),
  ("placement", "bogus", "unknown variant 'bogus'"),
  ("placement", "sst2,layers=0", "option layers: must be a positive integer, got '0'"),
  ("placement", "sst2,layers=x", "option layers: must be a positive integer, got 'x'"),
  ("placement", "sst2,steps=-1", "option steps: must be a positive integer, got '-1'"),
  ("placement", "sst2,color=3", "unknown option 'color'"),
  ("placement", "sst2,layers", "option 'layers' is not key=value"),
]


@pytest.mark.parametrize("name,arg,why", REFUSED)
def test_configs_refuse_bad_arguments(name, arg, why):
  module = importlib.import_module(f"configs.{name}")
  with pytest.raises(ValueError) as e:
    module.get_config(arg)
  message = str(e.value)
  assert message.startswith(f"configs/{name}.py: "), message
  assert why in message, message


def test_per_task_adapters_route_by_task_on_unpacked_rows():
  from configs import glue

  c = glue.get_config("smoke,task=sst2+cola,adapters=per_task")
  assert (c.method.name, c.method.per_task, c.data.pack, c.data.tasks) == (
    "adalink",
    True,
    False,
    ("sst2", "cola"),
  )
  assert glue.get_config("smoke,task=sst2+cola").method.per_task is False
  # Multi-task rows share one adapter, as the paper counts them; per-task routing is explicit,
  # and a rank or method option keeps the layout chosen (it used to reset it silently).
  assert glue.get_config("multitask_flan_adalink_r256").method.per_task is False
  per_task = glue.get_config("multitask_flan_adalink_r256,adapters=per_task,rank=8")
  assert (per_task.method.per_task, per_task.method.rank) == (True, 8)
  assert glue.get_config("multitask_flan_adalink_r256,rank=8,adapters=per_task").method.per_task


def test_multitask_rows_train_all_eight_tasks_or_only_those_with_train_files(tmp_path):
  from adalink.data.families import glue as glue_family
  from adalink.data.tasks import glue_spec
  from configs import glue

  assert glue.get_config("multitask_t5_ft").data.tasks == glue_spec.GLUE_TASKS
  for task in ("rte", "cola"):
    (tmp_path / glue_spec.get_spec(task).tsv_dir).mkdir()
    (tmp_path / glue_spec.get_spec(task).tsv_dir / "train.tsv").write_text("")
  config = glue.get_config("multitask_t5_ft,tasks=available")
  config.data.data_dir = str(tmp_path)
  assert glue_family.tasks(config) == ("cola", "rte")
  config.data.only_tasks_with_train_file = False
  with pytest.raises(FileNotFoundError, match=r"'sst2', whose train file .*SST-2/train.tsv"):
    glue_family.GlueFamily().build(config, None)


def test_glue_task_list_is_the_data_layers():
  from adalink.data.tasks import glue_spec

  assert glue_configs.GLUE_TASKS is glue_spec.GLUE_TASKS
  assert set(glue_configs.SHARED_TRAIN_TASKS) <= set(glue_spec.GLUE_TASKS)
  assert glue_configs.get_config("smoke,task=cola+qnli").data.tasks == ("cola", "qnli")


# The fields the trainer reads, by what the run does; every training config defines each of them,
# so the trainer needs no defaults of its own.
RUN_FIELDS = (
  "seed model.kind model.size model.init model.init_seed model.checkpoint model.dropout_rate "
  "model.dtype method.name data.kind data.batch_size data.host_split data.pack "
  "data.inputs_length data.targets_length optimizer.name schedule.peak_lr "
  "schedule.warmup_steps train.num_steps train.log_every train.checkpoint_every "
  "train.keep_checkpoints train.label_smoothing train.quiet train.preemption_check_every "
  "eval.enabled eval.at_start "
  "eval.every_steps eval.split eval.batch_size eval.best_metric eval.best_mode sharding.mesh "
  "sharding.distributed"
).split()
TOKENIZED_FIELDS = "model.vocab model.vocab_path model.vocab_extra_ids".split()
DECODED_EVAL_FIELDS = "eval.max_examples eval.decode eval.beam_size eval.alpha eval.max_decode_len"
LOSS_EVAL_FIELDS = "eval.max_batches"
DATA_FIELDS = {
  "glue": "data.tasks data.source data.data_dir data.tfds_data_dir data.on_bad_row "
  "data.mixture_cap " + DECODED_EVAL_FIELDS,
  "captioning": "model.vit_size model.image_size model.vit_checkpoint data.dataset "
  "data.annotation_file data.image_dir data.validation_annotation_file "
  "data.validation_fraction data.normalization data.prompt " + DECODED_EVAL_FIELDS,
  "pretrain": "data.text_dir data.objective data.validation_fraction " + LOSS_EVAL_FIELDS,
  "batch_files": "data.batch_dir " + LOSS_EVAL_FIELDS,
}

TRAINING_CASES = [(n, a) for n in TRAINING_CONFIGS for a in sorted(GOLDEN[n])]


@pytest.mark.parametrize("name,arg", TRAINING_CASES)
def test_training_configs_define_every_field_the_trainer_reads(name, arg):
  config = build(name, arg)
  kind = config.data.kind
  want = RUN_FIELDS + DATA_FIELDS[kind].split()
  if kind != "batch_files":
    want += TOKENIZED_FIELDS
  missing = []
  for dotted in want:
    node = config
    for part in dotted.split("."):
      if part not in node:
        missing.append(dotted)
        break
      node = node[part]
  assert not missing, f"configs/{name}.py:{arg} (data.kind {kind}) lacks {missing}"


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_config_file_opens_with_the_command_that_runs_it(name):
  module = importlib.import_module(f"configs.{name}")
  assert re.search(rf"python scripts/\w+\.py --config=configs/{name}\.py:\w+", module.__doc__)


def test_captioning_is_built_from_the_shared_sections_not_from_glue():
  source = open(os.path.join(CONFIGS_DIR, "captioning.py")).read()
  assert "configs import glue" not in source and "glue_configs" not in source


def test_captioning_rows_evaluate_on_the_papers_splits(tmp_path):
  from adalink.data.families import captioning as captioning_family
  from configs import captioning, paligemma

  for module in (captioning, paligemma):
    assert module.get_config("adalink_r64,data=coco").eval.split == "test"
    assert module.get_config("adalink_r64,data=textcaps").eval.split == "validation"
  train = tmp_path / "TextCaps_0.1_train.json"
  train.write_text("{}")
  assert captioning_family.textcaps_validation_file(str(train)) is None
  (tmp_path / "TextCaps_0.1_val.json").write_text("{}")
  assert captioning_family.textcaps_validation_file(str(train)) == str(
    tmp_path / "TextCaps_0.1_val.json"
  )
