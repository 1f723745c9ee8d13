"""A grid of training runs (methods x ranks x tasks, explicit variants of any config file, or the
runs of one of the paper's tables), run one after another here or emitted as one command per job
for a scheduler.

Each job trains `config_file:ARG` into ROOT/TASK/NAME and appends one JSON line (method, rank,
task, trainable parameters, first and last train loss, the eval metrics of the best checkpoint
by `eval.best_metric` with its step, and the final step's average) to
ROOT/results.jsonl, which `adalink.experiments.tables` turns into the paper-shaped tables. A
paper run's line also carries its identity (table, row, setting, checkpoint family and path,
method, rank, unified, dataset), so runs of different settings or checkpoints never collide.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

RESULTS = "results.jsonl"
RANKED = ("adalink", "lora")


@dataclasses.dataclass(frozen=True)
class Job:
  task: str  # the results' task label
  method: str
  rank: Optional[int]
  arg: str  # the config argument: VARIANT[,key=value...]
  workdir: str
  config_file: Optional[str] = None  # None: the sweep's config file
  sets: Tuple[str, ...] = ()  # this job's own `section.field=value` overrides
  identity: Tuple[Tuple[str, Any], ...] = ()  # a paper run's identity, recorded with its result


PAPER_FIELDS = ("table", "row", "setting", "checkpoint", "method", "rank", "unified", "dataset")


def paper_jobs(
  runs: Sequence[Any],
  root: str,
  per_key: Sequence[str] = (),
  stand_in: Optional[Callable[[Any], Tuple[str, str]]] = None,
) -> List[Job]:
  """One job per paper run (`adalink.experiments.paper_rows.Run`), trained into ROOT/<its name>.

  `per_key` holds `KEY:section.field=value` overrides, applied to the runs whose checkpoint
  family or dataset is KEY (e.g. `flan:model.checkpoint=/ckpt/flan-t5-xxl`). `stand_in(run)`,
  when given, replaces each run's (config file, argument), keeping its identity (e.g.
  `paper_rows.tiny_stand_in`)."""
  keyed = []
  for item in per_key:
    key, sep, assignment = item.partition(":")
    if not sep or "=" not in assignment:
      raise ValueError(f"--for {item}: expected KEY:section.field=value")
    keyed.append((key, assignment))
  keys = {r.checkpoint for r in runs} | {r.dataset for r in runs}
  unknown = sorted({k for k, _ in keyed} - keys)
  if unknown:
    raise ValueError(
      f"--for: no run of these tables has checkpoint family or dataset {unknown}; "
      f"known: {sorted(keys)}"
    )
  jobs = []
  for run in runs:
    sets = tuple(a for k, a in keyed if k in (run.checkpoint, run.dataset))
    identity = tuple((f, getattr(run, f)) for f in PAPER_FIELDS) + (
      ("checkpoint_path", _checkpoint_path(sets)),
    )
    config_file, arg = stand_in(run) if stand_in else (run.config_file, run.arg)
    jobs.append(
      Job(
        run.dataset,
        run.method,
        run.rank,
        arg,
        os.path.join(root, run.name),
        config_file=config_file,
        sets=sets,
        identity=identity,
      )
    )
  return jobs


def _checkpoint_path(sets: Sequence[str]) -> Optional[str]:
  for assignment in sets:
    if assignment.startswith("model.checkpoint="):
      return assignment.split("=", 1)[1]
  return None


def grid_jobs(
  base: str, methods: Sequence[str], ranks: Sequence[int], tasks: Sequence[str], root: str
) -> List[Job]:
  """`BASE,method=M,task=T[,rank=R]` for every task, method and (for ranked methods) rank;
  methods without a rank (pt, ft) run once per task."""
  jobs = []
  for task in tasks:
    for method in methods:
      for rank in ranks if method in RANKED else [None]:
        arg = f"{base},method={method},task={task}" + (f",rank={rank}" if rank else "")
        name = f"{method}_r{rank}" if rank else method
        jobs.append(Job(task, method, rank, arg, os.path.join(root, task, name)))
  return jobs


def variant_jobs(
  variants: Sequence[str], options: Sequence[str], root: str, label: Optional[str] = None
) -> List[Job]:
  """Each variant (e.g. the captioning rows ft, lora_r16, unified_r128) with `options`
  appended; the task label is `label`, else the first option's value."""
  suffix = "".join(f",{o}" for o in options)
  task = label or (options[0].split("=", 1)[1] if options else "task")
  jobs = []
  for variant in variants:
    m = re.match(r"^(\w+?)(?:_r(\d+))?$", variant)
    if not m:
      raise ValueError(f"variant {variant!r} is not NAME or NAME_rRANK")
    method, rank = m.group(1), int(m.group(2)) if m.group(2) else None
    method = "adalink" if method == "unified" else method  # the variant name keeps "unified"
    jobs.append(Job(task, method, rank, variant + suffix, os.path.join(root, task, variant)))
  return jobs


def commands(config_file: str, jobs: Iterable[Job], sets: Sequence[str] = ()) -> List[str]:
  """One `scripts/train.py` command line per job (its own config file and overrides first)."""
  lines = []
  for job in jobs:
    extra = " ".join(shlex.quote(f"--config.{kv}") for kv in (*sets, *job.sets))
    config = (job.config_file or config_file) + ":" + job.arg
    lines.append(
      f"python scripts/train.py --config={shlex.quote(config)} "
      f"--workdir={shlex.quote(job.workdir)} {extra}".rstrip()
    )
  return lines


def apply_set(config, assignment: str) -> None:
  """`section.field=value`, parsed to the field's current type."""
  dotted, sep, raw = assignment.partition("=")
  section, _, field = dotted.partition(".")
  if not sep or not field:
    raise ValueError(f"--set {assignment}: expected section.field=value")
  if section not in config or field not in config[section]:
    raise ValueError(f"--set {dotted}: no such config field")
  old = config[section][field]
  if isinstance(old, bool):
    if raw.lower() not in ("true", "false"):
      raise ValueError(f"--set {dotted}={raw}: expected true or false")
    value = raw.lower() == "true"
  elif isinstance(old, (int, float, str)):
    try:
      value = type(old)(raw)
    except ValueError:
      raise ValueError(f"--set {dotted}={raw}: expected a {type(old).__name__}") from None
  else:
    value = json.loads(raw)
  config[section][field] = value


def _metrics_lines(workdir: str, kind: str) -> List[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if f'"kind": "{kind}"' in line]


def best_eval(evals: Sequence[dict], metric: str, mode: str = "max") -> dict:
  """The evaluation (a metrics.jsonl eval line) the run's `best/` checkpoint holds: the best
  `metric` by `mode` (the earliest on ties; NaN never counts)."""
  scored = [e for e in evals if isinstance(e.get(metric), (int, float)) and e[metric] == e[metric]]
  if not scored:
    raise ValueError(f"no evaluation has a finite {metric!r} (evaluations: {len(evals)})")
  sign = 1.0 if mode == "max" else -1.0
  return max(scored, key=lambda e: (sign * e[metric], -e["step"]))


def job_config(get_config: Callable[[Job], Any], job: Job, sets: Sequence[str] = ()):
  """The job's config: built from its variant, then the sweep's and the job's overrides."""
  config = get_config(job)
  for assignment in (*sets, *job.sets):
    apply_set(config, assignment)
  return config


def _recorded_workdirs(results_path: str) -> set:
  if not os.path.exists(results_path):
    return set()
  with open(results_path) as f:
    return {json.loads(line)["workdir"] for line in f if line.strip()}


def run_sweep(
  get_config: Callable[[Job], Any],
  jobs: Sequence[Job],
  root: str,
  sets: Sequence[str] = (),
  log: Callable[[str], None] = print,
) -> str:
  """Builds and checks every job's config first (a typo in the grid fails before hours of
  training), then trains them in order; -> the results file. `get_config(job)` builds a job's
  config from its variant."""
  from adalink.train import trainer

  configs = []
  for job in jobs:
    config = job_config(get_config, job, sets)
    trainer.plan(config)
    configs.append((job, config))
  os.makedirs(root, exist_ok=True)
  results_path = os.path.join(root, RESULTS)
  recorded = _recorded_workdirs(results_path)
  for job, config in configs:
    if job.workdir in recorded:
      # Re-running a sweep continues it: a job already in the results is not trained again
      # (an interrupted job, not yet recorded, resumes from its latest checkpoint).
      log(f"== {job.task} {job.method} r={job.rank}: recorded in {results_path}, skipped")
      continue
    log(f"== {job.task} {job.method} r={job.rank} -> {job.workdir}")
    result = trainer.train_and_evaluate(config, job.workdir)
    setup = _metrics_lines(job.workdir, "setup")[-1]
    losses = [line["loss"] for line in _metrics_lines(job.workdir, "train")]
    # The scores of the checkpoint the run keeps as best (eval.best_metric, the paper's average by
    # default), not of its last step; the final step's scores stay beside them.
    final = {k: v for k, v in result["metrics"].items() if isinstance(v, (int, float))}
    scores, best_step = final, final.get("step")
    metric = config.eval.get("best_metric", "")
    evals = _metrics_lines(job.workdir, "eval")
    if metric and evals:
      try:
        best = best_eval(evals, metric, config.eval.get("best_mode", "max"))
      except ValueError as e:
        # e.g. a constant prediction leaves a correlation undefined: record the run as it ended
        # rather than lose the rest of the sweep.
        log(f"   {job.workdir}: {e}; recording the final evaluation, no best step")
        best = None
      if best is not None:
        scores = {k: v for k, v in best.items() if k not in ("kind",)}
        best_step = best["step"]
      else:
        best_step = None
    record = {
      **dict(job.identity),
      "task": job.task,
      "method": job.method,
      "rank": job.rank,
      "model_size": config.model.size,
      "config_file": job.config_file,
      "variant": job.arg,
      "first_loss": losses[0],
      "last_loss": losses[-1],
      "trainable_params": setup["trainable_params"],
      "workdir": job.workdir,
      **scores,
      "best_step": best_step,
      "final_step": final.get("step"),
      "final_average": final.get("average"),
    }
    with open(results_path, "a") as f:
      f.write(json.dumps(record) + "\n")
  return results_path
