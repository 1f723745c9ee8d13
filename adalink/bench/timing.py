"""Timing and memory: medians over steps, variants interleaved in shuffled rounds, the process's
peak memory, and paired-bootstrap intervals of a ratio of medians."""

from __future__ import annotations

import random
import resource
import statistics
import time
from typing import Callable, Dict, List


def _proc_status(field: str):
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return None


def reset_peak_rss() -> None:
  """Starts the process's peak-RSS counter afresh at its current RSS (Linux; a no-op elsewhere).

  Each measurement runs in a child forked from a server that has only imported the framework, so
  the peak it reports covers that framework's imports plus this one measurement, as a fresh
  process would, without paying the imports again for every method.
  """
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass


def peak_rss_bytes() -> int:
  hwm = _proc_status("VmHWM")
  return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn: Callable, n: int, warmup: int, sync: Callable):
  """-> (median seconds, every timed call) of `fn` after `warmup` untimed calls."""
  for _ in range(warmup):
    sync(fn())
  times = []
  for _ in range(n):
    t = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - t)
  return statistics.median(times), times


def interleaved(fns: Dict[str, Callable], n: int, warmup: int, sync: Callable) -> dict:
  """Times every function once per round, in a shuffled order, round after round, so slow drifts
  of the machine (frequency, other processes, allocator state) fall on all of them alike.
  -> name: times."""
  times = {name: [] for name in fns}
  order = list(fns)
  shuffle = random.Random(0).shuffle
  for r in range(warmup + n):
    shuffle(order)  # so no variant always follows the same neighbour
    for name in order:
      fn = fns[name]
      t = time.perf_counter()
      sync(fn())
      if r >= warmup:
        times[name].append(time.perf_counter() - t)
  return times


def infer_summary(times: dict) -> dict:
  """Per variant: median encode and 8-step decode times, and every round's times."""
  return {
    name: {
      "encode_s": statistics.median(t["encode"]) if t["encode"] else None,
      "decode8_s": statistics.median(t["decode8"]),
      "encode_times": t["encode"],
      "decode8_times": t["decode8"],
    }
    for name, t in times.items()
  }


def round_times(m: dict, key: str) -> List[float]:
  """Per-round times of one inference variant; `total` pairs the encode and the decoder loop of
  the same round."""
  if key == "total":
    return [a + b for a, b in zip(m["encode_times"], m["decode8_times"])]
  return list(m[f"{key}_times"])


def ratio_interval(num: list, den: list, n_boot: int = 2000, seed: int = 0):
  """median(num) / median(den), and its 5th and 95th percentiles when the rounds are resampled
  with replacement (paired: one resample picks the same rounds for both, which keeps the drift
  that both saw in a round out of the ratio). -> (ratio, lo, hi)."""
  import numpy as np

  num, den = np.asarray(num, float), np.asarray(den, float)
  idx = np.random.default_rng(seed).integers(0, len(num), (n_boot, len(num)))
  boot = np.median(num[idx], axis=1) / np.median(den[idx], axis=1)
  lo, hi = np.percentile(boot, [5, 95])
  return float(np.median(num) / np.median(den)), float(lo), float(hi)
