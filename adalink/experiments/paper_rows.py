r"""The AdaLink paper's Tables 1-6, row by row: each run a table needs, the config variant that
trains it (a file in configs/ and its argument), and the paper's own numbers for it.

  python scripts/sweep.py --paper-table 5 --root=/runs/t5 --emit \
      --for flan:model.checkpoint=/ckpt/flan-t5-xxl --for t5:model.checkpoint=/ckpt/t5-xxl-lm \
      --set data.data_dir=/data/glue_data > jobs.txt
  python scripts/make_tables.py --results=/runs/t5/results.jsonl --paper-table 5 --with-paper

A run's identity is (setting, checkpoint family, method, rank, unified, dataset); a table's rows
are filled from any result with that identity, so a run shared by two tables (Table 6's FLAN r=4
is Table 5's FLAN AdaLink; Table 2's r=64 and Table 3's modality-based rows are Table 1's AdaLink
COCO runs) trains once. `--for KEY:field=value` sets a field for the runs whose checkpoint family
or dataset is KEY (e.g. the checkpoint path of each family, each dataset's files).

Choices where the paper is silent or its model is not public:
- GLUE (Tables 5, 6): T5 1.1 XXL LM-adapted (`t5`) and FLAN-T5-XXL (`flan`) from their
  checkpoints, `configs/glue.py`: AdaLink LR 1e-3 and dropout 0.1 (the paper's), FT 1e-4.
  Single-task rows train one run per task; multi-task rows one run on all eight tasks with one
  shared adapter (the paper's counts: 0.5M = 2 x 1024 x 256, 2M = 2 x 1024 x 1024).
- Multimodal (Tables 1-4): PaLI-X is not public; the rows run PaliGemma-3B
  (`configs/paligemma.py`, base=paligemma_3b), its `mix` checkpoint standing for the paper's
  multimodal instruction-tuned (MMIT) variant and its `pt` checkpoint for the raw one. AdaLink is
  one r=64 adapter per modality (the paper's 1.05M at width 4096), unified AdaLink r=128, prompt
  tuning 64 tokens; the paper gives LoRA's size (19M) but not its rank: r=16 here.
- The paper's "#params" fit d_model 1024 for GLUE; `make_tables` prints the count of the model
  that ran beside them.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

from adalink.data.tasks import glue_spec

GLUE_TASKS = glue_spec.GLUE_TASKS
# The paper's GLUE column order (Tables 5 and 6) and each column's metric.
GLUE_COLUMNS = ("mnli", "qnli", "sst2", "qqp", "mrpc", "cola", "rte", "stsb")
GLUE_METRIC_LABELS = {
  "mnli": "MNLI Acc",
  "qnli": "QNLI Acc",
  "sst2": "SST2 Acc",
  "qqp": "QQP Acc",
  "mrpc": "MRPC Acc",
  "cola": "CoLA Mcc",
  "rte": "RTE Acc",
  "stsb": "STS-B Pearson",
}
VQA_COLUMNS = ("okvqa", "docvqa", "stvqa", "textvqa")
CAPTION_COLUMNS = ("coco", "textcaps")
MULTI_TASK = "glue"  # the dataset of a multi-task GLUE run (all eight tasks in one model)

GLUE_CONFIG = "configs/glue.py"
MULTIMODAL_CONFIG = "configs/paligemma.py"
MULTIMODAL_BASE = "paligemma_3b"
MULTIMODAL_LORA_RANK = 16
CHECKPOINT_LABELS = {"flan": "FLAN", "t5": "T5", "mmit": "MMIT", "raw": "Raw"}
METHOD_LABELS = {"ft": "FT", "lora": "LoRA", "pt": "PT", "adalink": "AdaLink"}


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run a paper table needs."""

  table: int
  row: str  # the row's label in the paper
  setting: str  # single_task | multi_task | multimodal
  checkpoint: str  # flan | t5 | mmit | raw
  method: str  # ft | lora | pt | adalink
  rank: Optional[int]
  unified: bool  # one AdaLink over both modalities (Table 3)
  dataset: str  # a GLUE task, "glue" (multi-task), or a multimodal dataset
  config_file: str
  arg: str  # the config variant and options that train it
  paper: Dict[str, float]  # the paper's numbers for this run, by dataset
  paper_params: str  # the paper's "#params" cell for the row

  @property
  def identity(self) -> Tuple:
    return identity_of(dataclasses.asdict(self))

  @property
  def name(self) -> str:
    """A directory name unique within a table."""
    unified = "_unified" if self.unified else ""
    rank = f"_r{self.rank}" if self.rank else ""
    return f"{self.setting}/{self.checkpoint}/{self.dataset}/{self.method}{unified}{rank}"


IDENTITY_FIELDS = ("setting", "checkpoint", "method", "rank", "unified", "dataset")


def identity_of(record: dict) -> Tuple:
  """The fields that make two runs the same experiment (a results line or a `Run`)."""
  return tuple(record.get(f) for f in IDENTITY_FIELDS)


# --- the paper's numbers -------------------------------------------------------------------------

# Table 5: (setting, checkpoint, method) -> (#params, eight scores in GLUE_COLUMNS order, Avg.)
TABLE5 = {
  ("single_task", "flan", "ft"): (
    "11B x 8",
    (92.1, 96.0, 97.1, 92.2, 92.2, 70.1, 93.9, 91.2),
    90.6,
  ),
  ("single_task", "flan", "adalink"): (
    "0.008M x 8",
    (91.7, 96.1, 97.4, 90.7, 91.9, 70.0, 94.9, 93.0),
    90.7,
  ),
  ("single_task", "t5", "ft"): ("11B x 8", (91.8, 96.2, 97.3, 92.2, 90.9, 72.2, 92.1, 91.4), 90.5),
  ("single_task", "t5", "adalink"): (
    "0.5M x 8",
    (91.4, 96.0, 97.1, 92.3, 91.5, 64.8, 93.5, 91.4),
    89.8,
  ),
  ("multi_task", "flan", "ft"): ("11B", (91.2, 96.1, 97.1, 91.9, 90.2, 70.2, 93.5, 89.5), 90.0),
  ("multi_task", "flan", "adalink"): (
    "0.5M",
    (91.8, 95.6, 96.8, 90.8, 93.1, 64.5, 93.1, 92.7),
    89.8,
  ),
  ("multi_task", "t5", "ft"): ("11B", (91.7, 96.1, 97.5, 90.8, 90.0, 65.8, 89.9, 87.6), 88.7),
  ("multi_task", "t5", "adalink"): ("2M", (90.1, 93.8, 96.0, 91.2, 88.0, 60.0, 86.3, 89.9), 86.9),
}
# The ranks of Table 5's AdaLink rows (the paper's text: FLAN 4 / T5 256 single-task, 256 / 1024
# multi-task).
TABLE5_RANKS = {
  ("single_task", "flan"): 4,
  ("single_task", "t5"): 256,
  ("multi_task", "flan"): 256,
  ("multi_task", "t5"): 1024,
}
# Table 6: (checkpoint, rank) -> (eight scores, Avg.), single-task AdaLink.
TABLE6 = {
  ("flan", 2): ((91.9, 96.1, 97.1, 91.0, 91.4, 68.7, 94.9, 92.8), 90.5),
  ("flan", 4): ((91.7, 96.1, 97.4, 90.7, 91.9, 70.0, 94.9, 93.0), 90.7),
  ("flan", 8): ((92.0, 96.2, 97.3, 90.8, 92.2, 68.9, 94.6, 93.0), 90.6),
  ("t5", 64): ((91.5, 95.9, 97.3, 91.7, 90.2, 63.3, 93.1, 91.8), 89.3),
  ("t5", 256): ((91.4, 96.0, 97.1, 92.3, 90.7, 64.8, 93.5, 90.6), 89.7),
  ("t5", 512): ((91.3, 96.0, 97.4, 92.2, 91.5, 62.8, 93.5, 91.4), 89.6),
  ("t5", 1024): ((91.4, 96.0, 97.1, 91.5, 91.6, 63.1, 93.1, 91.9), 89.6),
}
# Table 1 (CIDEr): method -> (#params, scores as printed: COCO MMIT, COCO Raw, TextCaps MMIT,
# TextCaps Raw).
TABLE1 = {
  "ft": ("32B", (147.0, 147.4, 148.5, 148.6)),
  "lora": ("19M", (146.8, 146.1, 148.6, 147.8)),
  "pt": ("262k", (142.2, 143.5, 145.5, 144.9)),
  "adalink": ("1.05M", (146.3, 146.2, 147.9, 145.2)),
}
TABLE1_NON_INTRUSIVE = {"ft": "No", "lora": "No", "pt": "Yes", "adalink": "Yes"}
TABLE2 = {4: 144.5, 16: 145.3, 64: 146.3, 256: 146.3}  # COCO CIDEr by rank, MMIT
TABLE3 = {
  (True, "mmit"): 145.5,
  (True, "raw"): 145.2,
  (False, "mmit"): 146.3,
  (False, "raw"): 146.2,
}
# Table 4: method -> (#params, scores as printed: MMIT and Raw for each of VQA_COLUMNS); accuracy
# for OK-VQA / TextVQA, ANLS x 100 for DocVQA / ST-VQA.
TABLE4 = {
  "ft": ("32B", (66.9, 66.1, 82.8, 80.0, 79.7, 80.2, 70.7, 71.9)),
  "lora": ("19M", (67.1, 63.3, 83.2, 80.6, 80.0, 78.6, 70.8, 69.1)),
  "pt": ("262k", (66.4, 64.9, 82.4, 79.7, 79.8, 78.3, 70.4, 69.7)),
  "adalink": ("1.05M", (66.8, 63.9, 82.9, 78.3, 80.0, 77.9, 70.2, 67.8)),
}
# The paper's "avg. delta to FT" cells (Tables 1 and 4), (MMIT, raw), as printed.
PAPER_DELTA = {
  1: {"ft": (0.0, 0.0), "lora": (-0.05, -1.05), "pt": (-3.9, -3.8), "adalink": (-0.65, -2.3)},
  4: {"ft": (0.0, 0.0), "lora": (0.25, -1.7), "pt": (-0.3, -1.4), "adalink": (-0.05, -2.58)},
}


def _scores_by_column(values, datasets) -> Dict[Tuple[str, str], float]:
  """A printed row (MMIT, Raw for each dataset in turn) -> {(dataset, checkpoint): score}."""
  out = {}
  for i, dataset in enumerate(datasets):
    out[(dataset, "mmit")], out[(dataset, "raw")] = values[2 * i], values[2 * i + 1]
  return out


# --- the runs ----------------------------------------------------------------------------------


def _glue_arg(checkpoint: str, method: str, rank: Optional[int], multitask: bool, task: str) -> str:
  variant = ("multitask_" if multitask else "") + f"{checkpoint}_{method}"
  if rank is not None:
    variant += f"_r{rank}"
  return variant if multitask else f"{variant},task={task}"


def _multimodal_variant(method: str, rank: Optional[int], unified: bool) -> str:
  if unified:
    return f"unified_r{rank}"
  return f"{method}_r{rank}" if rank else method


def _multimodal_rank(method: str) -> Optional[int]:
  return {"lora": MULTIMODAL_LORA_RANK, "adalink": 64}.get(method)


def _multimodal_run(table, row, checkpoint, method, rank, unified, dataset, paper, params) -> Run:
  arg = f"{_multimodal_variant(method, rank, unified)},data={dataset},base={MULTIMODAL_BASE}"
  return Run(
    table,
    row,
    "multimodal",
    checkpoint,
    method,
    rank,
    unified,
    dataset,
    MULTIMODAL_CONFIG,
    arg,
    paper,
    params,
  )


def _glue_runs(table, row, setting, checkpoint, method, rank, scores, params) -> List[Run]:
  """A GLUE row's runs: one per task (single-task), or one on all tasks (multi-task)."""
  multitask = setting == "multi_task"
  by_task = dict(zip(GLUE_COLUMNS, scores))
  datasets = [MULTI_TASK] if multitask else list(GLUE_COLUMNS)
  common = dict(table=table, row=row, setting=setting, checkpoint=checkpoint, method=method)
  return [
    Run(
      **common,
      rank=rank,
      unified=False,
      dataset=dataset,
      config_file=GLUE_CONFIG,
      arg=_glue_arg(checkpoint, method, rank, multitask, dataset),
      paper=by_task if multitask else {dataset: by_task[dataset]},
      paper_params=params,
    )
    for dataset in datasets
  ]


def table_runs(table: int) -> List[Run]:
  """Every run table `table` (1-6) needs, in the paper's row order."""
  runs: List[Run] = []
  if table in (1, 4):
    printed, datasets = (TABLE1, CAPTION_COLUMNS) if table == 1 else (TABLE4, VQA_COLUMNS)
    for method, (params, values) in printed.items():
      scores = _scores_by_column(values, datasets)
      rank, label = _multimodal_rank(method), METHOD_LABELS[method]
      for checkpoint in ("mmit", "raw"):
        for dataset in datasets:
          paper = {dataset: scores[(dataset, checkpoint)]}
          runs.append(
            _multimodal_run(table, label, checkpoint, method, rank, False, dataset, paper, params)
          )
  elif table == 2:
    for rank, score in TABLE2.items():
      runs.append(
        _multimodal_run(2, f"r={rank}", "mmit", "adalink", rank, False, "coco", {"coco": score}, "")
      )
  elif table == 3:
    for unified in (True, False):
      for checkpoint in ("mmit", "raw"):
        row = "Single unified AdaLink" if unified else "Modality-based AdaLink"
        runs.append(
          _multimodal_run(
            3,
            row,
            checkpoint,
            "adalink",
            128 if unified else 64,
            unified,
            "coco",
            {"coco": TABLE3[(unified, checkpoint)]},
            "",
          )
        )
  elif table == 5:
    for (setting, checkpoint, method), (params, scores, _) in TABLE5.items():
      rank = TABLE5_RANKS[(setting, checkpoint)] if method == "adalink" else None
      runs += _glue_runs(
        5, METHOD_LABELS[method], setting, checkpoint, method, rank, scores, params
      )
  elif table == 6:
    for (checkpoint, rank), (scores, _) in TABLE6.items():
      runs += _glue_runs(6, f"r={rank}", "single_task", checkpoint, "adalink", rank, scores, "")
  else:
    raise ValueError(f"the paper has Tables 1-6; no table {table!r}")
  return runs


TABLES = (1, 2, 3, 4, 5, 6)

# Tiny stand-ins: the same table machinery on models and data that need nothing downloaded.
TINY_GLUE_WIDTH, TINY_MULTIMODAL_WIDTH = 32, 64  # d_model of the smoke T5 and smoke PaliGemma


def tiny_stand_in(run: Run) -> Tuple[str, str]:
  """(config file, argument) of a download-free stand-in for `run`: the smoke T5 on the package's
  tiny GLUE sets, or the smoke PaliGemma on its tiny captions / questions, with the run's method
  and its rank capped at the tiny model's width. The result keeps the run's identity, so a tiny
  sweep fills the paper's tables in their shape (the numbers mean nothing about the paper)."""
  if run.setting == "multimodal":
    rank = min(run.rank, TINY_MULTIMODAL_WIDTH) if run.rank else None
    data = "tiny" if run.dataset in CAPTION_COLUMNS else "vqa_tiny"
    return MULTIMODAL_CONFIG, f"{_multimodal_variant(run.method, rank, run.unified)},data={data}"
  tasks = "+".join(GLUE_TASKS) if run.setting == "multi_task" else run.dataset
  arg = f"smoke,method={run.method},task={tasks}"
  if run.rank:
    arg += f",rank={min(run.rank, TINY_GLUE_WIDTH)}"
  return GLUE_CONFIG, arg
