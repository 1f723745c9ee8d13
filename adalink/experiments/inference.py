"""Decode text with a checkpoint: one output string per input.

T5 / FLAN-T5 (Hugging Face directory or T5X checkpoint, detected): the SentencePiece vocabulary
is the checkpoint's own `spiece.model` when its folder (or the folder above) has one, else
`vocab`; each input ends with EOS. `random_init=SIZE` skips loading and uses random weights with
the byte vocabulary (a download-free check of the whole path; its output is noise by construction).

Gemma / Gemma 2 and PaliGemma (Hugging Face directories, told apart by `config.json`'s
`model_type`) read the directory's `tokenizer.model` (else `vocab`) with `sentencepiece` alone, so
this path needs no TensorFlow. A Gemma prompt is BOS + the text, continued greedily or by beam
search from the cache; a PaliGemma prompt is the image tokens of `image` (resized to the model's
size, scaled to [-1, 1]) + BOS + the text + a newline, the layout of the reference processor.
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
  image: Optional[str] = None,
) -> List[str]:
  """The decoded output of each text: greedy (`beam` 1) or beam search with length penalty
  exponent `alpha`. Exactly one of `checkpoint` and `random_init` (a size name); `image` (a
  file) for a PaliGemma checkpoint, read with every text."""
  if bool(checkpoint) == bool(random_init):
    raise ValueError("give exactly one of checkpoint and random_init")
  if dtype not in DTYPES:
    raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
  if beam < 1:
    raise ValueError(f"beam must be >= 1, got {beam}")
  kind = checkpoint_kind(checkpoint) if checkpoint else "t5"
  if kind in _DECODER_ONLY:
    return _decode_decoder_only(
      kind, texts, checkpoint, vocab, image, max_input_len, max_decode_len, beam, alpha, dtype
    )
  if image:
    raise ValueError(f"--image needs a PaliGemma checkpoint; {checkpoint or random_init} is a T5")
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


_DECODER_ONLY = ("gemma", "paligemma")
TOKENIZER_FILE = "tokenizer.model"


def checkpoint_kind(checkpoint: str) -> str:
  """'gemma', 'paligemma' or 't5', from a Hugging Face directory's `model_type` (a T5X
  checkpoint, which has no config.json, is 't5')."""
  import json

  path = os.path.join(checkpoint, "config.json")
  if not os.path.isfile(path):
    return "t5"
  with open(path, encoding="utf-8") as f:
    model_type = json.load(f).get("model_type")
  if model_type in ("gemma", "gemma2"):
    return "gemma"
  return "paligemma" if model_type == "paligemma" else "t5"


def load_image(path: str, size: int):
  """An image file as [size, size, 3] float32 in [-1, 1] (bicubic resize, as SigLIP's processor)."""
  import numpy as np
  from PIL import Image

  if not os.path.isfile(path):
    raise FileNotFoundError(f"--image {path!r}: no such file")
  with Image.open(path) as im:
    im = im.convert("RGB").resize((size, size), Image.BICUBIC)
    return np.asarray(im, np.float32) / 127.5 - 1.0


def _decode_decoder_only(
  kind, texts, checkpoint, vocab, image, max_input_len, max_decode_len, beam, alpha, dtype
) -> List[str]:
  import jax.numpy as jnp
  import numpy as np
  import sentencepiece

  from adalink.train import decoding

  features = {}
  if kind == "gemma":
    from adalink.convert import hf_gemma
    from adalink.models import gemma

    if image:
      raise ValueError(f"--image needs a PaliGemma checkpoint; {checkpoint} is a Gemma")
    config, params = hf_gemma.load_hf_gemma(checkpoint)
    config = config.replace(dtype=dtype)
    model, text_config, suffix = gemma.Gemma(config), config, ""
  else:
    from adalink.convert import hf_paligemma
    from adalink.models import paligemma

    if not image:
      raise ValueError(f"{checkpoint} is a PaliGemma: give --image FILE")
    config, params = hf_paligemma.load_hf_paligemma(checkpoint)
    config = config.replace(
      text=config.text.replace(dtype=dtype), vision=config.vision.replace(dtype=dtype)
    )
    model, text_config, suffix = paligemma.PaliGemma(config), config.text, "\n"
    pixels = load_image(image, config.vision.image_size)
    features["images"] = jnp.asarray(np.broadcast_to(pixels, (len(texts),) + pixels.shape))
  vocab_path = vocab or os.path.join(checkpoint, TOKENIZER_FILE)
  if not os.path.isfile(vocab_path):
    raise FileNotFoundError(f"no {TOKENIZER_FILE} in {checkpoint}; pass --vocab PATH")
  sp = sentencepiece.SentencePieceProcessor(model_file=vocab_path)
  ids = [[text_config.bos_token_id] + sp.encode(t + suffix)[: max_input_len - 1] for t in texts]
  tokens = np.zeros((len(ids), max(len(r) for r in ids)), np.int32)
  for i, row in enumerate(ids):
    tokens[i, : len(row)] = row
  out = decoding.decode(
    model,
    params,
    jnp.asarray(tokens),
    max_decode_len,
    method="greedy" if beam == 1 else "beam",
    beam_size=beam,
    alpha=alpha,
    eos_id=text_config.eos_token_id,
    **features,
  )
  rows = decoding.trim_after_eos(np.asarray(out), text_config.eos_token_id)
  return [sp.decode(row) for row in rows]
