"""Decode text with a T5 / FLAN-T5 checkpoint: one output string per input.

The checkpoint format (Hugging Face directory or T5X checkpoint) is detected. The SentencePiece
vocabulary is the checkpoint's own `spiece.model` when its folder (or the folder above) has one,
else `vocab`. `random_init=SIZE` skips loading and uses random weights with the byte vocabulary
(a download-free check of the whole path; its output is noise by construction).
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence

DTYPES = ("float32", "bfloat16")


def find_vocab(checkpoint: str, vocab: Optional[str] = None) -> str:
  """`vocab` if given (it must exist), else the spiece.model beside `checkpoint`."""
  if vocab:
    if not os.path.isfile(vocab):
      raise FileNotFoundError(f"--vocab {vocab!r}: no such file")
    return vocab
  base = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
  for cand in (
    os.path.join(base, "spiece.model"),
    os.path.join(os.path.dirname(base), "spiece.model"),
  ):
    if os.path.isfile(cand):
      return cand
  raise FileNotFoundError(f"no spiece.model beside checkpoint {checkpoint!r}; pass --vocab PATH")


def decode_texts(
  texts: Sequence[str],
  checkpoint: Optional[str] = None,
  random_init: Optional[str] = None,
  size: Optional[str] = None,
  vocab: Optional[str] = None,
  max_input_len: int = 512,
  max_decode_len: int = 64,
  beam: int = 1,
  alpha: float = 0.6,
  dtype: str = "float32",
) -> List[str]:
  """The decoded output of each text: greedy (`beam` 1) or beam search with length penalty
  exponent `alpha`. Exactly one of `checkpoint` and `random_init` (a size name)."""
  if bool(checkpoint) == bool(random_init):
    raise ValueError("give exactly one of checkpoint and random_init")
  if dtype not in DTYPES:
    raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
  if beam < 1:
    raise ValueError(f"beam must be >= 1, got {beam}")
  import jax
  import jax.numpy as jnp
  import numpy as np

  from adalink.data.pipeline import vocab as vocab_lib
  from adalink.models import t5
  from adalink.train import decoding

  if random_init:
    config = t5.get_config(random_init, dropout_rate=0.0, dtype=dtype)
    vocabulary = vocab_lib.get_vocabulary("byte")
    if vocabulary.vocab_size > config.vocab_size:
      config = config.replace(vocab_size=int(np.ceil(vocabulary.vocab_size / 128) * 128))
    params = t5.init_params(config, jax.random.PRNGKey(0))
  else:
    from adalink import convert

    base_config = t5.get_config(size) if size else None
    config, params = convert.load_checkpoint(checkpoint, config=base_config)
    config = config.replace(dropout_rate=0.0, dtype=dtype)
    vocabulary = vocab_lib.get_vocabulary("sentencepiece", find_vocab(checkpoint, vocab))

  ids = [
    list(vocabulary.encode(text))[: max_input_len - 1] + [config.eos_token_id] for text in texts
  ]
  tokens = np.zeros((len(ids), max(len(r) for r in ids)), np.int32)
  for i, row in enumerate(ids):
    tokens[i, : len(row)] = row
  out = decoding.decode(
    t5.T5(config),
    params,
    jnp.asarray(tokens),
    max_decode_len,
    method="greedy" if beam == 1 else "beam",
    beam_size=beam,
    alpha=alpha,
    eos_id=config.eos_token_id,
  )
  return [
    vocabulary.decode(row) for row in decoding.trim_after_eos(np.asarray(out), config.eos_token_id)
  ]
