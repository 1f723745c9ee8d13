"""A PaLI-style image+text model: frozen ViT patch embeddings join the T5 text embeddings.

images -> ViT patch tokens -> linear projection to the text width = image embeddings;
tokens -> the T5 vocabulary table = text embeddings; `[image; text]` -> the shared T5 encoder ->
decoder. The embedding stage stays separable from the encoder (`embed_image`, `embed` and
`encode_embedded` are separate steps, the same seam as the text-only model), so a method can
transform each modality's embeddings on its own before they are concatenated, and image tokens
always sit at positions 0..N-1.

Parameter tree: the T5 tree at the top level (the T5 checkpoint's names, unchanged), plus `vit`
(the image tower's checkpoint tree) and `image_projection`. The ViT's output carries no gradient,
so the tower stays frozen under every method, full fine-tuning included.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import image_text, layers, t5, vit

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class PaLIConfig:
  text: t5.T5Config
  vision: vit.ViTConfig

  def __post_init__(self):
    if self.vision.pooling != "none":
      raise ValueError(
        f"PaLI needs every image token: vision.pooling must be 'none', got {self.vision.pooling!r}"
      )

  @property
  def d_model(self) -> int:
    return self.text.d_model

  @property
  def pad_token_id(self) -> int:
    return self.text.pad_token_id

  @property
  def num_image_tokens(self) -> int:
    return self.vision.output_length


class PaLI(nn.Module):
  config: PaLIConfig
  lora: Optional[layers.LoraSpec] = None
  lora_decoder: bool = False

  def setup(self):
    c = self.config
    self.text_model = t5.T5(c.text, lora=self.lora, lora_decoder=self.lora_decoder)
    # The T5 keeps the checkpoint's top-level names (token_embedder, encoder, decoder).
    nn.share_scope(self, self.text_model)
    self.vit = vit.ViT(c.vision)
    self.image_projection = layers.Dense(
      c.text.d_model,
      ("vit_embed", layers.EMBED),
      nn.initializers.lecun_normal(),
      c.text.jnp_dtype,
      use_bias=True,
    )

  def embed_image(self, images: Array) -> Array:
    """images [b, H, W, 3] (normalised) -> image embeddings [b, N, d_model]."""
    return self.image_projection(self.vit(images))

  def embed(self, tokens: Array) -> Array:
    return self.text_model.embed(tokens)

  def encode_embedded(
    self, embedded, mask, segment_ids=None, positions=None, deterministic: bool = True
  ):
    return self.text_model.encode_embedded(embedded, mask, segment_ids, positions, deterministic)

  def decode(self, *args, **kwargs):
    return self.text_model.decode(*args, **kwargs)

  def joint_embeddings(self, encoder_input_tokens, images) -> Tuple[Array, Array]:
    image, text = self.embed_image(images), self.embed(encoder_input_tokens)
    return image_text.join(image, text, encoder_input_tokens, self.config.pad_token_id)

  def encode_for_decoder(self, encoder_input_tokens, images=None, **unused):
    emb, mask = self.joint_embeddings(encoder_input_tokens, images)
    return self.encode_embedded(emb, mask), mask

  def __call__(
    self,
    encoder_input_tokens,
    decoder_input_tokens,
    decoder_target_tokens=None,
    images=None,
    deterministic: bool = True,
    **unused,
  ):
    emb, mask = self.joint_embeddings(encoder_input_tokens, images)
    encoded = self.encode_embedded(emb, mask, deterministic=deterministic)
    return self.decode(
      encoded, mask, decoder_input_tokens, decoder_target_tokens, deterministic=deterministic
    )


def init_params(config: PaLIConfig, rng: Array) -> Dict[str, Any]:
  images = jnp.zeros(
    (1, config.vision.image_size, config.vision.image_size, config.vision.num_channels), jnp.float32
  )
  variables = jax.jit(PaLI(config).init)(
    rng, jnp.ones((1, 4), jnp.int32), jnp.ones((1, 3), jnp.int32), images=images
  )
  return nn.unbox(variables["params"])
