"""Trainable-parameter counts per method and model size, from shapes alone (nothing allocated).

Counts come from `jax.eval_shape` of the real model init, so an 11B model costs no memory. Prompt
tuning lists the prompt (n x d, what the paper counts) and its training-only reparameterisation
network apart.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import jax
import jax.numpy as jnp

from adalink.models import t5
from adalink.peft import methods

PALI_X_WIDTH = 4096


def count(size: str, method_cfg: dict) -> Tuple[Dict[str, int], int]:
  """(trainable counts by kind, total base parameters) of a method at a T5 size."""
  config = t5.get_config(size)
  spec = methods.spec_from_config(method_cfg, config.d_model)
  abstract = methods.abstract_variables(methods.build_model(config, spec))
  total = methods.count_params(abstract["params"])
  return methods.count_trainable(spec, abstract), total


def modality_adapters(width: int, rank: int, unified: bool) -> int:
  """AdaLink on [image; text] at a given width (PaLI-X: 4096), counted from shapes."""
  spec = methods.MethodSpec(name="adalink", rank=rank, streams=("text", "image"), unified=unified)
  x = {"text": jnp.zeros((1, 2, width)), "image": jnp.zeros((1, 3, width))}
  shapes = jax.eval_shape(lambda: methods.InputAdapters(spec).init(jax.random.PRNGKey(0), x))
  return methods.count_params(shapes)


def table(
  sizes: Sequence[str] = ("t5_11b", "xxl", "base"),
  adalink_ranks: Sequence[int] = (4, 256, 1024),
  lora_ranks: Sequence[int] = (4, 16),
  prompts: int = 64,
  reparam_hidden: int = 512,
) -> str:
  """Markdown: every method per size (ranks above d_model left out), then AdaLink per modality
  and prompt tuning at PaLI-X width."""
  lines = [
    "| model | d_model | method | trainable params | % of base | notes |",
    "|---|---:|---|---:|---:|---|",
  ]
  for size in sizes:
    d = t5.get_config(size).d_model
    rows = [("FT", {"name": "ft"})]
    rows += [(f"LoRA r={r}", {"name": "lora", "rank": r}) for r in lora_ranks if r <= d]
    rows += [
      (
        f"PT {prompts} tokens",
        {"name": "pt", "num_prompts": prompts, "reparam_hidden": reparam_hidden},
      )
    ]
    rows += [(f"AdaLink r={r}", {"name": "adalink", "rank": r}) for r in adalink_ranks if r <= d]
    for label, cfg in rows:
      counts, total = count(size, cfg)
      n = counts["prompt"] if "prompt" in counts else counts["trainable"]
      note = (
        f"+ {counts['reparam']:,} reparameterisation (training only)" if "reparam" in counts else ""
      )
      lines.append(f"| {size} | {d} | {label} | {n:,} | {100.0 * n / total:.4f} | {note} |")

  width = PALI_X_WIDTH
  counts, _ = count("xxl", {"name": "pt", "num_prompts": prompts})
  lines += [
    "",
    f"PaLI-X width (d = {width}), counted from shapes:",
    "| method | trainable params |",
    "|---|---:|",
    f"| AdaLink, text + image adapters, r=64 each | {modality_adapters(width, 64, False):,} |",
    f"| AdaLink, one unified adapter, r=128 | {modality_adapters(width, 128, True):,} |",
    f"| PT {prompts} tokens | {counts['prompt']:,} |",
  ]
  return "\n".join(lines)
