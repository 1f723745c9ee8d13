"""Vocabularies the data layer tokenises with: SentencePiece for real T5 checkpoints, bytes for tiny runs.

Both follow the T5 id conventions the model relies on: id 0 is padding (and the decoder's BOS), id 1
is end-of-sequence. ``ByteVocabulary`` needs no file, which is what makes the smoke configs
download-free.
"""

from __future__ import annotations

import hashlib
import os

import seqio

PAD_ID = 0
EOS_ID = 1

VOCABULARY_KINDS = ("byte", "sentencepiece")


def get_vocabulary(
  kind: str, path: str | os.PathLike | None = None, extra_ids: int = 0
) -> seqio.Vocabulary:
  """Returns a seqio vocabulary.

  Args:
    kind: "byte" (seqio ByteVocabulary, 256 bytes + 3 specials) or "sentencepiece".
    path: the SentencePiece model file (required for "sentencepiece", ignored for "byte").
    extra_ids: sentinel ids appended after the base vocabulary (T5 checkpoints use 100).
  """
  if kind not in VOCABULARY_KINDS:
    raise ValueError(f"unknown vocabulary kind {kind!r}; expected one of {VOCABULARY_KINDS}")
  if extra_ids < 0:
    raise ValueError(f"extra_ids must be >= 0, got {extra_ids!r}")
  if kind == "byte":
    vocab = seqio.ByteVocabulary(extra_ids=extra_ids)
  else:
    if path is None:
      raise ValueError(
        "vocabulary kind 'sentencepiece' needs path= (the spiece.model file); got path=None"
      )
    path = os.fspath(path)
    if not os.path.isfile(path):
      raise ValueError(f"SentencePiece model file not found: {path!r}")
    vocab = seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)
  # The model's masking and decoder BOS assume these ids; fail loudly on a vocabulary that breaks them.
  if vocab.pad_id != PAD_ID or vocab.eos_id != EOS_ID:
    raise ValueError(
      f"vocabulary {kind!r} has pad={vocab.pad_id}, eos={vocab.eos_id}; "
      f"the model expects pad={PAD_ID}, eos={EOS_ID}"
    )
  return vocab


def vocabulary_fingerprint(vocab: seqio.Vocabulary) -> str:
  """A short stable string identifying a vocabulary, used to derive unique task names."""
  if isinstance(vocab, seqio.SentencePieceVocabulary):
    with open(vocab.sentencepiece_model_file, "rb") as f:
      digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return f"spm{digest}x{vocab.extra_ids}"
  if isinstance(vocab, seqio.ByteVocabulary):
    return f"byte_x{vocab.extra_ids}"
  return f"{type(vocab).__name__}_{vocab.vocab_size}"
