#!/usr/bin/env python
"""Decode text with a T5 / FLAN-T5 checkpoint: one output line per --input.

  python scripts/infer.py --checkpoint /path/to/flan-t5-base --input "translate English to German: Hi"
  python scripts/infer.py --checkpoint /path/to/t5x/checkpoint_1000000 --size base \
      --vocab /path/to/spiece.model --input "..." --beam 4

The checkpoint format (Hugging Face directory or T5X checkpoint) is detected. The SentencePiece
vocabulary is the checkpoint's own `spiece.model` when the directory has one, else --vocab.
`--random-init SIZE` skips loading and uses random weights with the byte vocabulary (download-free
smoke check of the whole path; its output is noise by construction).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


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
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  return p.parse_args(argv)


def _find_vocab(args) -> str:
  if args.vocab:
    if not os.path.isfile(args.vocab):
      raise SystemExit(f"--vocab {args.vocab!r}: no such file")
    return args.vocab
  base = args.checkpoint if os.path.isdir(args.checkpoint) else os.path.dirname(args.checkpoint)
  for cand in (
    os.path.join(base, "spiece.model"),
    os.path.join(os.path.dirname(base), "spiece.model"),
  ):
    if os.path.isfile(cand):
      return cand
  raise SystemExit(f"no spiece.model beside checkpoint {args.checkpoint!r}; pass --vocab PATH")


def main(argv=None):
  args = parse_args(argv)
  import jax.numpy as jnp
  import numpy as np
  import jax
  from adalink.data.pipeline import vocab as vocab_lib
  from adalink.models import t5
  from adalink.train import decoding

  if args.random_init:
    config = t5.get_config(args.random_init, dropout_rate=0.0, dtype=args.dtype)
    vocabulary = vocab_lib.get_vocabulary("byte")
    if vocabulary.vocab_size > config.vocab_size:
      config = config.replace(vocab_size=int(np.ceil(vocabulary.vocab_size / 128) * 128))
    params = t5.init_params(config, jax.random.PRNGKey(0))
  else:
    from adalink import convert

    base_config = t5.get_config(args.size) if args.size else None
    config, params = convert.load_checkpoint(args.checkpoint, config=base_config)
    config = config.replace(dropout_rate=0.0, dtype=args.dtype)
    vocabulary = vocab_lib.get_vocabulary("sentencepiece", _find_vocab(args))

  ids = [
    list(vocabulary.encode(text))[: args.max_input_len - 1] + [config.eos_token_id]
    for text in args.input
  ]
  width = max(len(r) for r in ids)
  tokens = np.zeros((len(ids), width), np.int32)
  for i, row in enumerate(ids):
    tokens[i, : len(row)] = row
  model = t5.T5(config)
  out = decoding.decode(
    model,
    params,
    jnp.asarray(tokens),
    args.max_decode_len,
    method="greedy" if args.beam == 1 else "beam",
    beam_size=args.beam,
    alpha=args.alpha,
    eos_id=config.eos_token_id,
  )
  for row in decoding.trim_after_eos(np.asarray(out), config.eos_token_id):
    print(vocabulary.decode(row))


if __name__ == "__main__":
  main()
