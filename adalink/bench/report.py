"""The benchmark's outputs: per size a Markdown table of training cost per method and framework,
the inference table with its noise reading (folded AdaLink against two builds of the base), the
optimiser-state table at T5-base dims, and a bar chart."""

from __future__ import annotations

import statistics
from typing import Any, Dict

from adalink.bench.options import BenchmarkOptions
from adalink.bench.timing import ratio_interval, round_times

# Dense bf16 peak FLOP/s by device kind, as published by the vendor (no sparsity).
PEAK_FLOPS = {
  "H100": 989.4e12,
  "H200": 989.4e12,
  "A100": 312e12,
  "TPU v4": 275e12,
  "TPU v5e": 197e12,
  "TPU v5p": 459e12,
}


def fmt_bytes(n) -> str:
  for unit in ("B", "KiB", "MiB", "GiB"):
    if n < 1024 or unit == "GiB":
      return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1024


def _train_table(r, o: BenchmarkOptions, size: str):
  dev = r["train"][0]["jax"]["device"]
  peak = next((v for k, v in PEAK_FLOPS.items() if k in dev), None)
  tokens = o.batch * (o.input_len + o.target_len)
  lines = [
    f"### T5 {size} dims, batch {o.batch}, input {o.input_len}, target "
    f"{o.target_len}, {o.dtype}, device: {dev}",
    "",
  ]
  if peak:
    lines += [
      f"MFU = 6 x total params x tokens per step / step time / {peak / 1e12:.1f} "
      f"TFLOP/s (dense bf16 peak of the device).",
      "",
    ]
  lines += [
    "| method | framework | trainable params | opt-state bytes | compile s | "
    "step ms (median) | examples/s | peak memory | MFU |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for row in r["train"]:
    for fw in ("jax", "torch"):
      m = row[fw]
      mfu = f"{100 * 6 * m['total_params'] * tokens / m['step_s'] / peak:.1f}%" if peak else "-"
      lines.append(
        f"| {row['label']} | {fw} | {m['trainable_params']:,} | "
        f"{fmt_bytes(m['opt_state_bytes'])} | {m['compile_s']:.1f} | "
        f"{1e3 * m['step_s']:.1f} | {o.batch / m['step_s']:.1f} | "
        f"{fmt_bytes(m['peak_bytes'])} ({m['peak_kind']}) | {mfu} |"
      )
  lines += [
    "",
    "JAX / PyTorch train-step time ratio per method: "
    + ", ".join(
      f"{row['label']} {row['jax']['step_s'] / row['torch']['step_s']:.2f}" for row in r["train"]
    ),
    "",
  ]
  ft = next(row for row in r["train"] if row["label"] == "FT")["jax"]["opt_state_bytes"]
  ada = [row for row in r["train"] if row["label"].startswith("AdaLink")]
  lines += [
    "AdaLink optimiser state as a share of FT's (JAX, factored Adafactor; AdamW in the "
    "T5-base table below): "
    + ", ".join(f"{row['label']} {100 * row['jax']['opt_state_bytes'] / ft:.4f}%" for row in ada),
    "",
  ]
  return lines


def _infer_tables(r, o: BenchmarkOptions):
  fws = [fw for fw in ("jax", "torch") if fw in r["infer"]]
  inf = r["infer"]
  names = [n for n in inf[fws[0]] if n != "worker_wall_s"]
  for fw in fws:  # end to end = encoder, then the 8-step decoder loop on its output
    for n in names:
      inf[fw][n]["total_s"] = statistics.median(round_times(inf[fw][n], "total"))
  lines = [
    f"Inference, medians of {o.steps} rounds; each round runs every variant once in "
    "a shuffled order. `encode`: the encoder forward; `loop`: the 8-step greedy decoder "
    "loop (KV cache, EOS disabled) on that output; `total`: the median over rounds of "
    "encode + loop. base#2 is a second build of the base (own weights, own compiled "
    "encoder): its difference from the base is the run's own noise.",
    "",
    "| variant | "
    + " | ".join(f"{fw} encode ms | {fw} loop ms | {fw} total ms" for fw in fws)
    + " |",
    "|---|" + "---:|---:|---:|" * len(fws),
  ]
  for name in names:
    cells = []
    for fw in fws:
      m = inf[fw][name]
      cells += [f"{1e3 * m[k]:.2f}" for k in ("encode_s", "decode8_s", "total_s")]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  lines.append("")
  bases = [n for n in names if n.split("#")[0] == "base"]
  lines += [
    "Folded AdaLink against the base, read against the run's own noise: `base#2/base` "
    "is the same ratio between two builds of the identical base. Brackets: 90% "
    "intervals of each ratio of medians from a paired bootstrap over the rounds "
    "(2,000 resamples), so the interval of base#2/base is how far a ratio of two "
    "identical models moves by chance.",
    "",
  ]
  for fw in fws:
    for key in ("encode", "total"):
      per_round = {n: round_times(inf[fw][n], key) for n in names}
      series = [inf[fw][n][f"{key}_s"] for n in bases]
      spread = (max(series) - min(series)) / min(series)
      cell = lambda n: "{:.3f} [{:.3f}, {:.3f}]".format(
        *ratio_interval(per_round[n], per_round["base"])
      )
      _, lo, _ = ratio_interval(per_round["adalink_folded"], per_round["base"])
      noise = f"base#2/base {cell(bases[1])}; " if len(bases) > 1 else ""
      # One-sided: the claim is that folding costs nothing, not that it is faster.
      verdict = (
        "not slower than the base beyond the noise"
        if lo <= 1
        else "slower than the base beyond the noise"
      )
      lines.append(
        f"- {fw} {key}: base medians {', '.join(f'{1e3 * x:.2f}' for x in series)} "
        f"ms (spread {100 * spread:.1f}%); {noise}folded/base "
        f"{cell('adalink_folded')}, {verdict}; module/base {cell('adalink_module')}"
      )
  lines.append("")
  return lines


def report(results: Dict[str, Any], options: BenchmarkOptions) -> str:
  """Markdown for every size in `results` (size -> {"train": rows, "infer": per framework})."""
  lines = []
  for size, r in results.items():
    lines += _train_table(r, options, size)
    lines += _infer_tables(r, options)
  return "\n".join(lines)


def state_table(size: str = "base") -> str:
  """Optimiser-state bytes per method with Adafactor and AdamW, from shapes."""
  from adalink.bench.jax_side import state_bytes_from_shapes

  rows = [
    ("FT", {"name": "ft"}),
    ("LoRA r=4", {"name": "lora", "rank": 4}),
    ("AdaLink r=4", {"name": "adalink", "rank": 4}),
    ("AdaLink r=64", {"name": "adalink", "rank": 64}),
  ]
  got = {
    label: {opt: state_bytes_from_shapes(size, cfg, opt) for opt in ("adafactor", "adamw")}
    for label, cfg in rows
  }
  lines = [
    f"Optimiser state at T5 {size} dims, from shapes (share of FT's in brackets):",
    "",
    "| method | Adafactor (factored, as trained here) | AdamW |",
    "|---|---:|---:|",
  ]
  for label, _ in rows:
    cells = []
    for opt in ("adafactor", "adamw"):
      share = 100.0 * got[label][opt] / got["FT"][opt]
      cells.append(f"{fmt_bytes(got[label][opt])} ({share:.4f}%)")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def chart(results: Dict[str, Any], path: str) -> None:
  """Train-step time and peak memory per method, both frameworks side by side (one PNG per size
  when there are several)."""
  import matplotlib

  matplotlib.use("Agg")  # files only
  import matplotlib.pyplot as plt
  import numpy as np

  for size, r in results.items():
    labels = [row["label"] for row in r["train"]]
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key, scale, title in (
      (axes[0], "step_s", 1e3, "train step (ms)"),
      (axes[1], "peak_bytes", 2**-20, "peak memory (MiB)"),
    ):
      for i, fw in enumerate(("jax", "torch")):
        ax.bar(
          x + (i - 0.5) * 0.38,
          [row[fw][key] * scale for row in r["train"]],
          0.38,
          label="this codebase (JAX)" if fw == "jax" else "transformers+peft",
        )
      ax.set_xticks(x)
      ax.set_xticklabels(labels, rotation=30, ha="right")
      ax.set_title(f"T5 {size}: {title}")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path.replace(".png", f"_{size}.png") if len(results) > 1 else path, dpi=110)
    plt.close(fig)
