#!/usr/bin/env python
"""Decode text with a T5 / FLAN-T5 checkpoint: one output line per --input.

  python scripts/infer.py --checkpoint /path/to/flan-t5-base --input "translate English to German: Hi"
  python scripts/infer.py --checkpoint /path/to/t5x/checkpoint_1000000 --size base \
      --vocab /path/to/spiece.model --input "..." --beam 4

The checkpoint format (Hugging Face directory or T5X checkpoint) is detected. The SentencePiece
vocabulary is the checkpoint's own `spiece.model` when the directory has one, else --vocab.
`--random-init SIZE` skips loading and uses random weights with the byte vocabulary (download-free
smoke check of the whole path; its output is noise by construction). The decoding is
`adalink.experiments.inference.decode_texts`.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402
from adalink.experiments import inference  # noqa: E402


def parse_args(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--checkpoint", help="Hugging Face T5 directory or T5X checkpoint (dir or file)")
  src.add_argument(
    "--random-init", metavar="SIZE", help="random weights of a named size (e.g. tiny)"
  )
  p.add_argument("--size", help="named size for T5X checkpoints (their files do not record heads)")
  p.add_argument("--vocab", help="SentencePiece model; default: spiece.model beside the checkpoint")
  p.add_argument("--input", action="append", required=True, help="input text (repeatable)")
  p.add_argument("--max-input-len", type=int, default=512)
  p.add_argument("--max-decode-len", type=int, default=64)
  p.add_argument("--beam", type=int, default=1, help="beam size; 1 = greedy")
  p.add_argument("--alpha", type=float, default=0.6, help="beam length-penalty exponent")
  p.add_argument("--dtype", default="float32", choices=inference.DTYPES)
  return p.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  texts = vars(args).pop("input")
  for line in inference.decode_texts(texts, **vars(args)):
    print(line)


if __name__ == "__main__":
  cli.run(main)
