"""Trainable-parameter counts per method and model size, from shapes alone (nothing allocated).

Counts come from `jax.eval_shape` of the real model init, so an 11B model costs no memory. Prompt
tuning lists the prompt (n x d, what the paper counts) and its training-only reparameterisation
network apart.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import jax
import jax.numpy as jnp

from adalink.models import gemma_config, paligemma, t5
from adalink.peft import methods

PALI_X_WIDTH = 4096


def count(size: str, method_cfg: dict) -> Tuple[Dict[str, int], int]:
  """(trainable counts by kind, total base parameters) of a method at a T5 size."""
  return count_model(t5.get_config(size), method_cfg)


def count_model(config, method_cfg: dict, streams=("text",)) -> Tuple[Dict[str, int], int]:
  """`count` for any registered model config (T5, Gemma, PaliGemma) and its input streams."""
  d_model = config.d_model
  spec = methods.spec_from_config(method_cfg, d_model, available_streams=tuple(streams))
  abstract = methods.abstract_variables(methods.build_model(config, spec))
  total = methods.count_params(abstract["params"])
  return methods.count_trainable(spec, abstract), total


# The public decoder-only and image+text models, at their published shapes (PaliGemma's Gemma
# table holds 257,216 rows: Gemma's 256,000 plus location and segmentation tokens).
PUBLIC_MODELS = {
  "Gemma-2B": (lambda: gemma_config.get_config("gemma_2b"), ("text",)),
  "Gemma 2-2B": (lambda: gemma_config.get_config("gemma2_2b"), ("text",)),
  "PaliGemma-3B (224 px)": (
    lambda: paligemma.get_config("gemma_2b", "So400m/14", vocab_size=257216),
    ("image", "text"),
  ),
}


def public_model_table(prompts: int = 64, reparam_hidden: int = 512) -> str:
  """Markdown: each method on Gemma-2B, Gemma 2-2B and PaliGemma-3B, plus the memory a folded
  AdaLink input table would take there (Gemma ties its input and output tables, so folding
  needs a whole new table per task; the module, the default, needs only its adapters)."""
  lines = [
    "| model | d_model | method | trainable params | % of base | notes |",
    "|---|---:|---|---:|---:|---|",
  ]
  for name, (make, streams) in PUBLIC_MODELS.items():
    config = make()
    text = getattr(config, "text", config)
    d = text.d_model
    both = tuple(streams)
    rows = [
      ("FT", {"name": "ft"}),
      ("LoRA r=4", {"name": "lora", "rank": 4}),
      ("LoRA r=16", {"name": "lora", "rank": 16}),
      (
        f"PT {prompts} tokens",
        {"name": "pt", "num_prompts": prompts, "reparam_hidden": reparam_hidden},
      ),
      ("AdaLink r=4 (text)", {"name": "adalink", "rank": 4}),
    ]
    if len(both) > 1:
      rows += [
        ("AdaLink r=64 per modality", {"name": "adalink", "rank": 64, "streams": both}),
        (
          "AdaLink unified r=128",
          {"name": "adalink", "rank": 128, "streams": both, "unified": True},
        ),
      ]
    else:
      rows += [("AdaLink r=64", {"name": "adalink", "rank": 64})]
    for label, cfg in rows:
      counts, total = count_model(config, cfg, streams)
      n = counts["prompt"] if "prompt" in counts else counts["trainable"]
      note = (
        f"+ {counts['reparam']:,} reparameterisation (training only)" if "reparam" in counts else ""
      )
      if label.startswith("AdaLink r=4 "):
        table_bytes = text.vocab_size * d * 2
        note = (
          f"folded: a {text.vocab_size:,} x {d} input table per task, "
          f"{table_bytes / 2**20:,.0f} MiB in bf16, vs {n * 2 / 2**10:,.0f} KiB for the module"
        )
      lines.append(f"| {name} | {d} | {label} | {n:,} | {100.0 * n / total:.4f} | {note} |")
  return "\n".join(lines)


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
  public_models: bool = True,
) -> str:
  """Markdown: every method per size (ranks above d_model left out), then AdaLink per modality
  and prompt tuning at PaLI-X width, then (with `public_models`) `public_model_table`."""
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
  if public_models:
    lines += [
      "",
      "Public checkpoints (Gemma, PaliGemma), counted from shapes:",
      public_model_table(prompts, reparam_hidden),
    ]
  return "\n".join(lines)
