"""Every config variant and option builds the same ConfigDict as before the configs shared a parser
and section builders: `golden_configs.json` holds each listed argument's fields (type and value),
recorded from the hand-written configs. Fields added since then are only the ones the trainer
reads, set to the value the trainer used when the field was absent, so no run changes. One
deliberate change since: the multi-task GLUE variants train all eight tasks with one shared
AdaLink, as the paper's Table 5 does (they trained five, with one adapter per task), and COCO
captioning evaluates on the Karpathy test split, as Table 1 reports it (it was validation)."""

import importlib
import json
import os

import pytest

import configs

GOLDEN_PATH = os.path.join(os.path.dirname(__file__), "golden_configs.json")
CONFIGS_DIR = os.path.dirname(os.path.abspath(configs.__file__))

with open(GOLDEN_PATH) as f:
  GOLDEN = json.load(f)

# Fields a config may have gained, with the value the trainer assumed when they were missing
# (a callable: computed from the config's own fields).
ADDED_DEFAULTS = {
  "model.kind": lambda flat: "t5",
  "model.vocab_extra_ids": lambda flat: 0,
  "data.kind": lambda flat: "glue",
  "eval.at_start": lambda flat: False,
  # Added with preemption handling (the trainer had no such field before).
  "train.preemption_check_every": lambda flat: 1,
  # Added with layer scan and remat (layers were always unrolled, nothing recomputed).
  "model.scan_layers": lambda flat: False,
  "model.remat": lambda flat: "none",
  "data.only_tasks_with_train_file": lambda flat: False,
  # Added with the parameter-scaled Adafactor of the pretraining recipe (updates were unscaled).
  "optimizer.multiply_by_parameter_scale": lambda flat: False,
}


def flatten(node, prefix=""):
  """dotted name -> [type name, JSON value] (tuples as lists), paths relative to configs/."""
  out = {}
  for key in sorted(node.keys()):
    value = node[key]
    if hasattr(value, "keys"):
      out.update(flatten(value, f"{prefix}{key}."))
      continue
    if isinstance(value, str):
      value = value.replace(CONFIGS_DIR, "{configs}")
    out[f"{prefix}{key}"] = [
      type(value).__name__,
      list(value) if isinstance(value, tuple) else value,
    ]
  return out


def build(name: str, arg: str):
  module = importlib.import_module(f"configs.{name}")
  return module.get_config(arg) if arg else module.get_config()


CASES = [(name, arg) for name in sorted(GOLDEN) for arg in sorted(GOLDEN[name])]


@pytest.mark.parametrize("name,arg", CASES, ids=[f"{n}:{a or '<default>'}" for n, a in CASES])
def test_variant_builds_the_recorded_values(name, arg):
  want = GOLDEN[name][arg]
  got = flatten(build(name, arg))
  changed = {k: (want[k], got.get(k)) for k in want if got.get(k) != want[k]}
  assert not changed, f"configs/{name}.py:{arg}: (recorded, now) differ: {changed}"
  for key in sorted(set(got) - set(want)):
    assert key in ADDED_DEFAULTS, f"configs/{name}.py:{arg}: unexpected new field {key}"
    assert got[key][1] == ADDED_DEFAULTS[key](got), (
      f"configs/{name}.py:{arg}: new field {key}={got[key][1]!r} differs from the trainer's "
      f"former default {ADDED_DEFAULTS[key](got)!r}"
    )


def test_golden_covers_every_config_file():
  files = sorted(
    f[:-3] for f in os.listdir(CONFIGS_DIR) if f.endswith(".py") and f not in ("__init__.py",)
  )
  assert set(GOLDEN) <= set(files)
  assert {"glue", "captioning", "pretrain", "placement"} <= set(GOLDEN)
