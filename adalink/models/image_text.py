"""How an image+text model lays out its input: the image tokens, then the text tokens, as one
sequence. Shared by the PaLI-style model (its T5 encoder reads it) and PaliGemma (its Gemma
prefix)."""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp

Array = jax.Array


def join(image: Array, text: Array, tokens: Array, pad_id: int) -> Tuple[Array, Array]:
  """[image tokens; text embeddings] [b, n + l, d] and its mask (every image token is real, a text
  position is real unless its token is `pad_id`); the image stream takes the text's dtype."""
  mask = jnp.concatenate([jnp.ones(image.shape[:2], bool), tokens != pad_id], axis=1)
  return jnp.concatenate([image.astype(text.dtype), text], axis=1), mask
