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

With --paper-table N, the runs of the paper's Table N (`adalink/experiments/paper_rows.py`: every
row, each with its config variant); `--for KEY:field=value` sets a field for the runs whose checkpoint family
(flan, t5, mmit, raw) or dataset is KEY:
  python scripts/sweep.py --paper-table 5 --root=/runs/t5 --emit \
      --for flan:model.checkpoint=/ckpt/flan-t5-xxl --for t5:model.checkpoint=/ckpt/t5-xxl-lm

Each grid job trains `configs/glue.py:BASE,method=M,rank=R,task=T` into ROOT/T/M_rR, then appends one
JSON line (method, rank, task, trainable parameters, final eval metrics) to ROOT/results.jsonl,
which `scripts/make_tables.py` turns into the paper-shaped tables. Methods without a rank (pt, ft)
run once per task. Extra `--set=dotted.key=value` overrides apply to every job
(`adalink.experiments.sweep`).
"""

import argparse
import importlib
import os
import sys

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

from adalink import cli  # noqa: E402
from adalink.experiments import sweep  # noqa: E402

_list = lambda s: [x for x in s.split(",") if x]


def config_module(config_file: str):
  """The module of a config file given by its path (e.g. configs/glue.py)."""
  module = os.path.splitext(os.path.relpath(os.path.join(REPO, config_file), REPO))[0]
  return importlib.import_module(module.replace(os.sep, "."))


def main(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--config", default="configs/glue.py", help="config file of the jobs")
  p.add_argument("--base", default="smoke", help="configs/glue.py variant the jobs start from")
  p.add_argument(
    "--variants",
    type=_list,
    default=None,
    help="explicit variants of --config instead of the methods x ranks grid",
  )
  p.add_argument(
    "--options",
    type=_list,
    default=[],
    help="options appended to every variant, e.g. data=flickr8k",
  )
  p.add_argument("--label", default=None, help="task label of explicit variants in the results")
  p.add_argument("--methods", type=_list, default=["adalink", "lora", "pt", "ft"])
  p.add_argument("--ranks", type=lambda s: [int(x) for x in _list(s)], default=[4])
  p.add_argument("--tasks", type=_list, default=["sst2"])
  p.add_argument("--root", required=True)
  p.add_argument("--emit", action="store_true", help="print commands instead of running")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  p.add_argument(
    "--paper-table", type=int, default=None, help="the runs of the paper's table N (1-6)"
  )
  p.add_argument(
    "--for",
    dest="per_key",
    action="append",
    default=[],
    metavar="KEY:FIELD=VALUE",
    help="--paper-table: set FIELD for the runs whose checkpoint family or dataset is KEY",
  )
  p.add_argument(
    "--tiny",
    action="store_true",
    help="--paper-table: download-free stand-ins (smoke models, the package's tiny data)",
  )
  p.add_argument(
    "--tables", type=_list, default=None, help="several paper tables at once, e.g. 1,2,3,4,5,6"
  )
  args = p.parse_args(argv)

  tables = [args.paper_table] if args.paper_table is not None else None
  tables = [int(t) for t in args.tables] if args.tables else tables
  if (args.per_key or args.tiny) and tables is None:
    raise ValueError("--for and --tiny apply to --paper-table runs")
  if tables is not None:
    from adalink.experiments import paper_rows as paper

    runs = list({r.identity: r for t in tables for r in paper.table_runs(t)}.values())
    stand_in = paper.tiny_stand_in if args.tiny else None
    jobs = sweep.paper_jobs(runs, args.root, args.per_key, stand_in)
  elif args.variants:
    jobs = sweep.variant_jobs(args.variants, args.options, args.root, args.label)
  else:
    jobs = sweep.grid_jobs(args.base, args.methods, args.ranks, args.tasks, args.root)
  if args.emit:
    print("\n".join(sweep.commands(args.config, jobs, args.set)))
    return
  path = sweep.run_sweep(
    lambda job: config_module(job.config_file or args.config).get_config(job.arg),
    jobs,
    args.root,
    args.set,
    log=lambda s: print(s, flush=True),
  )
  print(f"results: {path}")


if __name__ == "__main__":
  cli.run(main)
