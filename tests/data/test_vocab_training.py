"""Training the base's SentencePiece vocabulary: T5's id layout, byte-for-byte reproducible, and
nothing overwritten."""

import pytest

from adalink.data.pipeline import vocab_training

pytest.importorskip("sentencepiece")


def _corpus(tmp_path):
  """Seeded pseudo-English: enough distinct pieces for a 300-piece vocabulary."""
  import random

  rng = random.Random(0)
  syllables = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + ["the", "and", "ing", "tion"]
  words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(3000)]
  lines = [" ".join(rng.choice(words) for _ in range(14)) for _ in range(3000)]
  path = tmp_path / "part-000.txt"
  path.write_text("\n".join(lines) + "\n")
  return [str(path)]


def test_same_inputs_same_file_and_t5_ids(tmp_path):
  import sentencepiece as spm

  files = _corpus(tmp_path)
  a = vocab_training.train_vocabulary(files, str(tmp_path / "a"), vocab_size=300)
  b = vocab_training.train_vocabulary(files, str(tmp_path / "b"), vocab_size=300)
  assert a["sha256"] == b["sha256"]
  assert (tmp_path / "a" / "spiece.model").read_bytes() == (
    tmp_path / "b" / "spiece.model"
  ).read_bytes()
  sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "a" / "spiece.model"))
  assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
  assert sp.get_piece_size() == 300
  assert sp.decode(sp.encode("the bake and sotion")) == "the bake and sotion"


def test_refuses_to_overwrite_and_names_missing_files(tmp_path):
  files = _corpus(tmp_path)
  vocab_training.train_vocabulary(files, str(tmp_path / "a"), vocab_size=300)
  with pytest.raises(FileExistsError, match="spiece.model exists"):
    vocab_training.train_vocabulary(files, str(tmp_path / "a"), vocab_size=300)
  with pytest.raises(FileNotFoundError, match="nope.txt"):
    vocab_training.train_vocabulary([str(tmp_path / "nope.txt")], str(tmp_path / "c"))
