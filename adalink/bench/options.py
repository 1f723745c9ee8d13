"""What one benchmark measurement is: the model size, the batch shape, the timing rounds. The
script builds it from flags; tests and scripts/profile_step.py construct it directly."""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

TRAIN_METHODS: List[Tuple[str, Optional[int]]] = [
  ("ft", None),
  ("lora", 4),
  ("lora", 16),
  ("pt", None),
  ("adalink", 4),
  ("adalink", 64),
]
INFER_VARIANTS = ["base", "adalink_module", "adalink_folded", "lora_unmerged", "lora_merged", "pt"]
DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class BenchmarkOptions:
  """One measurement's settings (the same for both frameworks)."""

  size: str = "small"  # T5 size whose dims the random-weight model has
  batch: int = 8
  input_len: int = 128
  target_len: int = 8
  prompts: int = 64  # prompt-tuning prompt length
  steps: int = 20  # timed steps or rounds (the median is reported)
  warmup: int = 1
  base_repeats: int = 2  # times the base runs in each inference round (its spread is the noise)
  dtype: str = "float32"

  def __post_init__(self):
    if self.dtype not in DTYPES:
      raise ValueError(f"BenchmarkOptions.dtype must be one of {DTYPES}, got {self.dtype!r}")
    for field in ("batch", "input_len", "target_len", "prompts", "steps", "base_repeats"):
      value = getattr(self, field)
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f"BenchmarkOptions.{field} must be a positive integer, got {value!r}")
    if not isinstance(self.warmup, int) or self.warmup < 0:
      raise ValueError(f"BenchmarkOptions.warmup must be >= 0, got {self.warmup!r}")


def label(method: str, rank: Optional[int]) -> str:
  """The table's name of a method, e.g. `LoRA r=4`, `PT 64 tok`."""
  return {"ft": "FT", "lora": "LoRA", "pt": "PT", "adalink": "AdaLink"}[method] + (
    f" r={rank}" if rank else (" 64 tok" if method == "pt" else "")
  )


def infer_order(base_repeats: int) -> List[str]:
  """The variants in the order each round times them; the base appears `base_repeats` times
  (as base, base#2, ...) so its spread is the run's own noise."""
  return ["base"] + INFER_VARIANTS[1:] + [f"base#{i}" for i in range(2, base_repeats + 1)]
