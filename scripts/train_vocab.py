#!/usr/bin/env python
r"""Trains the SentencePiece vocabulary of the shipped base on the pretraining corpus.

  python scripts/train_vocab.py --out=/tmp/spm8k
  python scripts/train_vocab.py --text_dir=../shared/data/text --vocab_size=8000 --out=DIR

Writes OUT/spiece.model (unigram, pad=0 eos=1 unk=2, no BOS: T5's layout; the 100 sentinels are
added by the data layer) and OUT/spiece.json (inputs and sha256). The same inputs give the same
file byte for byte. part-006.txt is left out: it holds the validation documents' files.
"""

import argparse
import glob
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from adalink import cli  # noqa: E402

DEFAULT_TEXT = os.path.join(
  os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "text"
)


def main(argv):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--text_dir", default=DEFAULT_TEXT, help="folder of part-00N.txt files")
  p.add_argument("--files", default="part-00[0-5].txt", help="glob of training files in it")
  p.add_argument("--vocab_size", type=int, default=8000)
  p.add_argument("--max_chars", type=int, default=40_000_000, help="characters of text to train on")
  p.add_argument("--out", required=True, help="output folder (must not hold a spiece.model)")
  args = p.parse_args(argv)
  from adalink.data.pipeline import vocab_training

  files = sorted(glob.glob(os.path.join(args.text_dir, args.files)))
  if not files:
    raise FileNotFoundError(f"--text_dir {args.text_dir}: no files match {args.files!r}")
  record = vocab_training.train_vocabulary(
    files, args.out, vocab_size=args.vocab_size, max_chars=args.max_chars
  )
  print(f"wrote {os.path.join(args.out, 'spiece.model')} sha256={record['sha256']}")


if __name__ == "__main__":
  cli.run(main)
