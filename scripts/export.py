#!/usr/bin/env python
"""Export a model of this codebase as a Hugging Face T5 directory and/or a T5X checkpoint file.

  python scripts/export.py --workdir /tmp/run --hf /tmp/run_hf --t5x /tmp/run.t5x
  python scripts/export.py --workdir /tmp/run --which best --hf /tmp/best_hf
  python scripts/export.py --workdir /tmp/adalink_run --adapter /tmp/adalink_adapter
  python scripts/export.py --checkpoint /ckpt/t5x/checkpoint_1000000 --size base \
      --vocab /ckpt/spiece.model --hf /tmp/base_hf

--workdir restores a run directory written by scripts/train.py; FT runs are written as trained,
LoRA runs with their adapters merged; AdaLink and prompt-tuning runs are refused (a Hugging Face
T5 has one shared token table and no prompts) unless --base-only, which writes the frozen base.
--adapter writes a run's trained part alone (adapter.safetensors + adapter_config.json; for
AdaLink also folded_encoder_embedding.safetensors), loadable with scripts/infer.py --adapter.
--checkpoint converts a plain checkpoint (Hugging Face directory or T5X checkpoint) instead.
Existing outputs are replaced only with --force; --verify reads the outputs back. The details are
in `adalink.experiments.export`, which does the work.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402
from adalink.experiments import export as export_lib  # noqa: E402


def parse_args(argv=None) -> export_lib.ExportOptions:
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--workdir", help="run directory written by scripts/train.py")
  src.add_argument("--checkpoint", help="a Hugging Face T5 directory or a T5X checkpoint")
  p.add_argument(
    "--which",
    choices=export_lib.WHICH,
    default="latest",
    help="with --workdir: the latest or the best (eval-selected) checkpoint",
  )
  p.add_argument("--step", type=int, help="with --workdir: this step instead of the newest one")
  p.add_argument("--size", help="with --checkpoint: named size to check a T5X checkpoint against")
  p.add_argument(
    "--base-only",
    action="store_true",
    help="for AdaLink / prompt-tuning runs: export the frozen base model",
  )
  p.add_argument("--hf", help="output Hugging Face directory")
  p.add_argument(
    "--adapter",
    help="with --workdir: output directory for the run's adapter files (AdaLink, LoRA, PT, "
    "placement) and, for AdaLink, its folded encoder table",
  )
  p.add_argument("--t5x", help="output T5X checkpoint file")
  p.add_argument("--vocab", help="SentencePiece model to copy into the Hugging Face directory")
  p.add_argument(
    "--dtype",
    choices=export_lib.DTYPES,
    default="float32",
    help="stored precision of the exported weights",
  )
  p.add_argument(
    "--force",
    action="store_true",
    help="replace existing outputs (the whole --hf directory, whatever it holds)",
  )
  p.add_argument(
    "--verify", action="store_true", help="read the outputs back and compare every parameter"
  )
  args = p.parse_args(argv)
  return export_lib.ExportOptions(**vars(args))


def main(argv=None):
  export_lib.export(parse_args(argv))


if __name__ == "__main__":
  cli.run(main)
