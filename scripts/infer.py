#!/usr/bin/env python
"""Decode text with a trained run, an adapter on its base, or a T5 / FLAN-T5 checkpoint.

  python scripts/infer.py --run /tmp/w --input "sst2 sentence: a gorgeous film"
  python scripts/infer.py --run /tmp/multi --which best --task rte --input-file inputs.txt
  python scripts/infer.py --adapter /tmp/adapter --checkpoint /ckpt/base_hf --input "..."
  python scripts/infer.py --checkpoint /path/to/flan-t5-base --input "translate English to German: Hi"
  python scripts/infer.py --checkpoint /ckpt/gemma-2-2b --input "The capital of France is"
  python scripts/infer.py --checkpoint /ckpt/paligemma-3b-pt-224 --image cat.jpg --input "caption en"

--run decodes with a run directory's checkpoint and its own evaluation settings (input length,
batch size, decoding method and length), so its output on a validation set's inputs is what
scripts/eval.py scored. --adapter loads adapter files (scripts/export.py --adapter) onto
--checkpoint (default: the base the adapter records), refusing a base it was not trained on
unless --allow-different-base. AdaLink is served folded into the vocabulary table (--unfolded:
as the module), LoRA merged, prompt tuning with its prompts; --task picks the task's adapter of
a per-task run. --checkpoint alone decodes the plain model (Hugging Face directory or T5X
checkpoint; the vocabulary is its spiece.model, else --vocab), or a Gemma / PaliGemma
directory (its tokenizer.model; PaliGemma reads --image with every input); --random-init SIZE
uses random T5 weights and the byte vocabulary (a download-free check; its output is noise).
The work is in `adalink.experiments.serve` and `adalink.experiments.inference`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402
from adalink.experiments import inference  # noqa: E402


def parse_args(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--run", help="run directory written by scripts/train.py")
  p.add_argument("--adapter", help="adapter directory written by scripts/export.py --adapter")
  p.add_argument(
    "--checkpoint",
    help="Hugging Face T5 / Gemma / PaliGemma directory or T5X checkpoint (with --adapter: its base)",
  )
  p.add_argument("--image", help="with a PaliGemma --checkpoint: the image every input reads")
  p.add_argument("--random-init", metavar="SIZE", help="random weights of a named size")
  p.add_argument("--which", choices=("latest", "best"), default="latest", help="with --run")
  p.add_argument("--step", type=int, help="with --run: this step instead of the newest")
  p.add_argument("--task", help="the task whose adapter to use (per-task runs and adapters)")
  p.add_argument("--unfolded", action="store_true", help="serve AdaLink as the module")
  p.add_argument("--allow-different-base", action="store_true", help="with --adapter")
  p.add_argument("--size", help="named size for T5X checkpoints (their files do not record heads)")
  p.add_argument("--vocab", help="SentencePiece model; default: spiece.model beside the checkpoint")
  p.add_argument("--input", action="append", default=[], help="input text (repeatable)")
  p.add_argument("--input-file", help="a file of inputs, one per line")
  p.add_argument("--max-input-len", type=int, default=512, help="with --checkpoint")
  p.add_argument("--max-decode-len", type=int, help="default: the run's, else 64")
  p.add_argument("--beam", type=int, help="beam size; 1 = greedy (default: the run's, else 1)")
  p.add_argument("--alpha", type=float, help="beam length-penalty exponent (default 0.6)")
  p.add_argument("--dtype", default="float32", choices=inference.DTYPES)
  p.add_argument(
    "--jsonl",
    action="store_true",
    help="print each output as a JSON string (outputs may hold newlines)",
  )
  args = p.parse_args(argv)
  sources = [f for f in ("run", "adapter", "random_init") if getattr(args, f)]
  if len(sources) > 1 or (args.checkpoint and sources not in ([], ["adapter"])):
    p.error("give one of --run, --adapter [--checkpoint BASE], --checkpoint, --random-init")
  if not sources and not args.checkpoint:
    p.error("give one of --run, --adapter [--checkpoint BASE], --checkpoint, --random-init")
  if args.input_file:
    with open(args.input_file) as f:
      args.input += [line.rstrip("\n") for line in f]
  if not args.input:
    p.error("give --input TEXT (repeatable) or --input-file FILE")
  return args


def main(argv=None):
  args = parse_args(argv)
  if args.run or args.adapter:
    from adalink.experiments import serve

    lines = serve.decode_request(**vars(args))  # --checkpoint is the adapter's base here
  else:
    lines = inference.decode_texts(
      args.input,
      checkpoint=args.checkpoint,
      random_init=args.random_init,
      size=args.size,
      vocab=args.vocab,
      max_input_len=args.max_input_len,
      max_decode_len=args.max_decode_len or 64,
      beam=args.beam or 1,
      alpha=0.6 if args.alpha is None else args.alpha,
      dtype=args.dtype,
      image=args.image,
    )
  for line in lines:
    print(json.dumps(line) if args.jsonl else line)


if __name__ == "__main__":
  cli.run(main)
