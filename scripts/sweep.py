#!/usr/bin/env python
r"""Run a grid of methods x ranks x tasks, or print one training command per job.

  python scripts/sweep.py --base=smoke --methods=adalink,lora --ranks=2,8 --tasks=sst2 \
      --root=/tmp/sweep                          # runs them here, one after another
  python scripts/sweep.py --base=flan_adalink_r4 --methods=adalink --ranks=2,4,8 \
      --tasks=rte,mrpc,cola --root=gs://bucket/sweep --emit > jobs.txt   # for a scheduler

With --variants (any config file, e.g. the captioning rows), each listed variant plus --options is
one job:
  python scripts/sweep.py --config=configs/captioning.py --variants=ft,pt,lora_r16,adalink_r64,\
      unified_r128 --options=data=flickr8k --root=/tmp/cap_sweep

Each grid job trains `configs/glue.py:BASE,method=M,rank=R,task=T` into ROOT/T/M_rR, then appends one
JSON line (method, rank, task, trainable parameters, final eval metrics) to ROOT/results.jsonl,
which `scripts/make_tables.py` turns into the paper-shaped tables. Methods without a rank (pt, ft)
run once per task. Extra `--set=dotted.key=value` overrides apply to every job.
"""

import argparse
import importlib
import json
import os
import re
import shlex
import sys

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)


def jobs(args):
  if args.variants:
    # Explicit variants of any config file, e.g. the captioning rows.
    suffix = "".join(f",{o}" for o in args.options)
    task = args.label or (args.options[0].split("=", 1)[1] if args.options else "task")
    for variant in args.variants:
      m = re.match(r"^(\w+?)(?:_r(\d+))?$", variant)
      method, rank = m.group(1), int(m.group(2)) if m.group(2) else None
      method = "adalink" if method == "unified" else method  # the variant name keeps "unified"
      yield task, method, rank, variant + suffix, os.path.join(args.root, task, variant)
    return
  for task in args.tasks:
    for method in args.methods:
      for rank in args.ranks if method in ("adalink", "lora") else [None]:
        arg = f"{args.base},method={method},task={task}" + (f",rank={rank}" if rank else "")
        name = f"{method}_r{rank}" if rank else method
        yield task, method, rank, arg, os.path.join(args.root, task, name)


def _set(config, dotted, raw):
  """`--set section.field=value`, parsed to the field's current type."""
  section, field = dotted.split(".", 1)
  if section not in config or field not in config[section]:
    raise SystemExit(f"--set {dotted}: no such config field")
  old = config[section][field]
  if isinstance(old, bool):
    if raw.lower() not in ("true", "false"):
      raise SystemExit(f"--set {dotted}={raw}: expected true or false")
    value = raw.lower() == "true"
  elif isinstance(old, (int, float, str)):
    value = type(old)(raw)
  else:
    value = json.loads(raw)
  config[section][field] = value


def main(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--config", default="configs/glue.py", help="config file of the jobs")
  p.add_argument("--base", default="smoke", help="configs/glue.py variant the jobs start from")
  p.add_argument(
    "--variants",
    type=lambda s: s.split(","),
    default=None,
    help="explicit variants of --config instead of the methods x ranks grid",
  )
  p.add_argument(
    "--options",
    type=lambda s: s.split(","),
    default=[],
    help="options appended to every variant, e.g. data=flickr8k",
  )
  p.add_argument("--label", default=None, help="task label of explicit variants in the results")
  p.add_argument("--methods", type=lambda s: s.split(","), default=["adalink", "lora", "pt", "ft"])
  p.add_argument("--ranks", type=lambda s: [int(x) for x in s.split(",")], default=[4])
  p.add_argument("--tasks", type=lambda s: s.split(","), default=["sst2"])
  p.add_argument("--root", required=True)
  p.add_argument("--emit", action="store_true", help="print commands instead of running")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  args = p.parse_args(argv)

  grid = list(jobs(args))
  if args.emit:
    for _, _, _, arg, workdir in grid:
      extra = " ".join(f"--config.{kv}" for kv in args.set)
      print(
        f"python scripts/train.py --config={shlex.quote(args.config + ':' + arg)} "
        f"--workdir={shlex.quote(workdir)} {extra}".rstrip()
      )
    return

  module = os.path.splitext(os.path.relpath(os.path.join(REPO, args.config), REPO))[0]
  config_module = importlib.import_module(module.replace(os.sep, "."))
  from adalink.train import trainer

  # Build every config first: a typo in the grid fails before hours of training.
  configs = []
  for task, method, rank, arg, workdir in grid:
    config = config_module.get_config(arg)
    for kv in args.set:
      key, raw = kv.split("=", 1)
      _set(config, key, raw)
    trainer.plan(config)
    configs.append((task, method, rank, arg, config, workdir))
  os.makedirs(args.root, exist_ok=True)
  results_path = os.path.join(args.root, "results.jsonl")
  for task, method, rank, arg, config, workdir in configs:
    print(f"== {task} {method} r={rank} -> {workdir}", flush=True)
    result = trainer.train_and_evaluate(config, workdir)
    setup = [
      json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl")) if '"kind": "setup"' in l
    ][-1]
    losses = [
      json.loads(l)["loss"]
      for l in open(os.path.join(workdir, "metrics.jsonl"))
      if '"kind": "train"' in l
    ]
    record = {
      "task": task,
      "method": method,
      "rank": rank,
      "model_size": config.model.size,
      "variant": arg,
      "first_loss": losses[0],
      "last_loss": losses[-1],
      "trainable_params": setup["trainable_params"],
      "workdir": workdir,
      **{k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))},
    }
    with open(results_path, "a") as f:
      f.write(json.dumps(record) + "\n")
  print(f"results: {results_path}")


if __name__ == "__main__":
  main()
