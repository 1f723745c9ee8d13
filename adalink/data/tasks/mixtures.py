"""Examples-proportional mixing rates with a cap, and building seqio mixtures under unique names.

Rate of a task = min(number of training examples, cap) (T5's "examples-proportional mixing" with
limit K): large tasks stop drowning small ones once they pass the cap.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import seqio

from adalink.data.tasks import registry

DEFAULT_CAP = 2**19  # T5's usual K; no GLUE task is that large, so by default rates = sizes


def examples_proportional_rates(
  tasks: Sequence[seqio.Task], split: str = "train", cap: int | None = DEFAULT_CAP
) -> dict[str, float]:
  """{task name: min(examples in ``split``, cap)}; ``cap=None`` means no cap."""
  if cap is not None and cap <= 0:
    raise ValueError(f"cap must be a positive number of examples or None, got {cap!r}")
  rates = {}
  for task in tasks:
    if split not in task.splits:
      raise ValueError(
        f"task {task.name!r} has no {split!r} split (it has {tuple(task.splits)}); "
        f"it cannot be weighted by its {split!r} size"
      )
    n = task.num_input_examples(split)
    if not n:
      raise ValueError(
        f"task {task.name!r} does not know its {split!r} size "
        f"(num_input_examples={n!r}); pass explicit rates"
      )
    rates[task.name] = float(n if cap is None else min(n, cap))
  return rates


def build_mixture(
  base_name: str, tasks: Sequence[seqio.Task], rates: Mapping[str, float]
) -> seqio.Mixture:
  """A seqio Mixture of ``tasks`` with ``rates``, registered under a name unique to both."""
  if not tasks:
    raise ValueError("a mixture needs at least one task")
  missing = [t.name for t in tasks if t.name not in rates]
  if missing:
    raise ValueError(f"no rate given for task(s) {missing}")
  config = {"tasks": [t.name for t in tasks], "rates": {t.name: rates[t.name] for t in tasks}}
  return registry.get_or_register_mixture(
    base_name, config, lambda name: seqio.Mixture(name, [(t, rates[t.name]) for t in tasks])
  )
