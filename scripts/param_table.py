#!/usr/bin/env python
"""Trainable-parameter counts per method and model size, from shapes alone (nothing allocated).

  python scripts/param_table.py                       # the paper's configurations and defaults
  python scripts/param_table.py --sizes base t5_11b --adalink-ranks 4 256 1024

Counts come from `jax.eval_shape` of the real model init, so an 11B model costs no memory. Prompt
tuning lists the prompt (n x d, what the paper counts) and its training-only reparameterisation
network apart.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax
import jax.numpy as jnp

from adalink.models import t5
from adalink.peft import methods


def count(size: str, method_cfg: dict):
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


def main(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--sizes", nargs="+", default=["t5_11b", "xxl", "base"])
  p.add_argument("--adalink-ranks", nargs="+", type=int, default=[4, 256, 1024])
  p.add_argument("--lora-ranks", nargs="+", type=int, default=[4, 16])
  p.add_argument("--prompts", type=int, default=64)
  p.add_argument("--reparam-hidden", type=int, default=512)
  args = p.parse_args(argv)

  print("| model | d_model | method | trainable params | % of base | notes |")
  print("|---|---:|---|---:|---:|---|")
  for size in args.sizes:
    d = t5.get_config(size).d_model
    rows = [("FT", {"name": "ft"})]
    rows += [(f"LoRA r={r}", {"name": "lora", "rank": r}) for r in args.lora_ranks if r <= d]
    rows += [
      (
        f"PT {args.prompts} tokens",
        {"name": "pt", "num_prompts": args.prompts, "reparam_hidden": args.reparam_hidden},
      )
    ]
    rows += [
      (f"AdaLink r={r}", {"name": "adalink", "rank": r}) for r in args.adalink_ranks if r <= d
    ]
    for label, cfg in rows:
      counts, total = count(size, cfg)
      n = counts["prompt"] if "prompt" in counts else counts["trainable"]
      note = (
        f"+ {counts['reparam']:,} reparameterisation (training only)" if "reparam" in counts else ""
      )
      print(f"| {size} | {d} | {label} | {n:,} | {100.0 * n / total:.4f} | {note} |")

  width = 4096
  print()
  print(f"PaLI-X width (d = {width}), counted from shapes:")
  print("| method | trainable params |")
  print("|---|---:|")
  print(f"| AdaLink, text + image adapters, r=64 each | {modality_adapters(width, 64, False):,} |")
  print(f"| AdaLink, one unified adapter, r=128 | {modality_adapters(width, 128, True):,} |")
  counts, _ = count("xxl", {"name": "pt", "num_prompts": args.prompts})
  print(f"| PT {args.prompts} tokens | {counts['prompt']:,} |")


if __name__ == "__main__":
  main()
