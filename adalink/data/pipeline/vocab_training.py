"""Trains a SentencePiece vocabulary on a plain-text corpus, reproducibly, with T5's id layout.

The project pretrains its own small base (no pretrained weights can be downloaded where it is
built); at d_model 128-256 the 32k T5 vocabulary would make the output layer and its loss about
half of every training step, so the base gets a smaller vocabulary trained on the same corpus.

    train_vocabulary(["../shared/data/text/part-000.txt", ...], "/tmp/spm", vocab_size=8000)

Layout, as T5's `spiece.model`: a unigram model with pad=0, eos=1, unk=2 and no BOS, NFKC
normalisation; sentinels (`<extra_id_k>`) are not pieces of the model but are appended by
`seqio.SentencePieceVocabulary(extra_ids=100)`, as for T5.

Reproducibility: the training sentences are chosen by a fixed rule (from each listed file in
order, its lines of at least `min_line_chars` characters up to an equal share of `max_chars`),
written to one file and given to the trainer unshuffled with one thread, so the same files and
arguments give the same model file byte for byte (the sha256 is returned and recorded beside it).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Sequence

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2


def sample_lines(files: Sequence[str], max_chars: int, min_line_chars: int = 20):
  """The training sentences: from each file in turn, its lines in order (skipping short ones) up
  to an equal share of `max_chars`, so every file (books and articles alike) is represented."""
  share = max_chars // max(len(files), 1)
  for path in files:
    taken = 0
    with open(path, encoding="utf-8") as f:
      for line in f:
        line = line.strip()
        if len(line) < min_line_chars:
          continue
        yield line
        taken += len(line)
        if taken >= share:
          break


def train_vocabulary(
  files: Sequence[str],
  out_dir: str,
  vocab_size: int = 8000,
  max_chars: int = 40_000_000,
  character_coverage: float = 0.9995,
) -> dict:
  """Writes `out_dir/spiece.model` and `out_dir/spiece.json` (how it was made); returns the latter.

  Refuses to overwrite an existing `spiece.model`.
  """
  import sentencepiece as spm

  for path in files:
    if not os.path.isfile(path):
      raise FileNotFoundError(f"vocabulary corpus file not found: {path}")
  if vocab_size < 256:
    raise ValueError(f"vocab_size must be >= 256, got {vocab_size}")
  os.makedirs(out_dir, exist_ok=True)
  model_path = os.path.join(out_dir, "spiece.model")
  if os.path.exists(model_path):
    raise FileExistsError(f"{model_path} exists; choose another --out")
  with tempfile.TemporaryDirectory() as tmp:
    text_path = os.path.join(tmp, "sentences.txt")
    n_lines = 0
    with open(text_path, "w", encoding="utf-8") as f:
      for line in sample_lines(files, max_chars):
        f.write(line + "\n")
        n_lines += 1
    # The model file records its trainer's input and output paths: train from inside the
    # temporary folder with relative names, so the file does not depend on where that folder is.
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
      spm.SentencePieceTrainer.train(
        input="sentences.txt",
        model_prefix="spiece",
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=character_coverage,
        pad_id=PAD_ID,
        eos_id=EOS_ID,
        unk_id=UNK_ID,
        bos_id=-1,
        normalization_rule_name="nmt_nfkc",
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=1,
        max_sentence_length=16384,
        minloglevel=2,
      )
    finally:
      os.chdir(cwd)
    with open(os.path.join(tmp, "spiece.model"), "rb") as f:
      blob = f.read()
  with open(model_path, "wb") as f:
    f.write(blob)
  record = {
    "files": [os.path.basename(p) for p in files],
    "vocab_size": vocab_size,
    "max_chars": max_chars,
    "character_coverage": character_coverage,
    "training_lines": n_lines,
    "sha256": hashlib.sha256(blob).hexdigest(),
  }
  with open(os.path.join(out_dir, "spiece.json"), "w") as f:
    json.dump(record, f, indent=2)
  return record
