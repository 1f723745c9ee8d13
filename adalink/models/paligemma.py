"""PaliGemma: a SigLIP image encoder, a linear projection and a Gemma decoder over
[image tokens; prompt] (the prefix, attended to in full) and the answer (causal).

images -> SigLIP tokens (frozen, `adalink.models.vit`) -> `image_projection` (with bias) to the
Gemma width = the image stream. The prompt's token rows are the text stream. Both streams are in
the table-row space of `Gemma.embed` (before Gemma's sqrt(d_model) input scaling), so the image
stream is the projection divided by sqrt(d_model): after the scaling the decoder reads the
projection itself, as in the reference. The joined prefix runs through `Gemma.prefill` with
`prefix_attention='full'` and the answer through `Gemma.continue_from`, so the trainer and the
decoders use it like any encoder-decoder (see `adalink.models.gemma`).

Parameter tree: `vit/...` (the SigLIP tower), `image_projection/{kernel, bias}`, and Gemma's own
names at the top level (`token_embedder`, `layers_N`, `final_norm`), as for PaLI's T5.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import flax.linen as nn

from adalink.models import gemma, gemma_config, image_text, layers, vit

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class PaliGemmaConfig:
  text: gemma_config.GemmaConfig
  vision: vit.ViTConfig

  def __post_init__(self):
    if self.vision.pooling != "none":
      raise ValueError(
        f"PaliGemma needs every image token: vision.pooling must be 'none', got "
        f"{self.vision.pooling!r}"
      )
    if self.vision.use_cls_token:
      raise ValueError("PaliGemma's SigLIP tower has no [CLS] token (vision.use_cls_token)")
    if self.text.prefix_attention != "full":
      raise ValueError(
        "PaliGemma attends to its whole prefix: text.prefix_attention must be 'full', got "
        f"{self.text.prefix_attention!r}"
      )

  def replace(self, **kw) -> "PaliGemmaConfig":
    return dataclasses.replace(self, **kw)

  @property
  def d_model(self) -> int:
    return self.text.d_model

  @property
  def pad_token_id(self) -> int:
    return self.text.pad_token_id

  @property
  def num_image_tokens(self) -> int:
    return self.vision.output_length


def get_config(text_size: str, vit_size: str, image_size: Optional[int] = None, **text_overrides):
  """A PaliGemma of a named Gemma size and a named ViT (its image size optionally replaced)."""
  vision_overrides = {"use_cls_token": False}
  if image_size:
    vision_overrides["image_size"] = int(image_size)
  text = gemma_config.get_config(text_size, prefix_attention="full", **text_overrides)
  vision = vit.get_config(vit_size, dtype=text.dtype, **vision_overrides)
  return PaliGemmaConfig(text, vision)


class PaliGemma(nn.Module):
  config: PaliGemmaConfig
  lora: Optional[layers.LoraSpec] = None

  def setup(self):
    c = self.config
    self.text_model = gemma.Gemma(c.text, lora=self.lora)
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
    """images [b, H, W, 3] (normalised to [-1, 1]) -> image stream [b, N, d] (table-row space)."""
    projected = self.image_projection(self.vit(images))
    return projected / jnp.asarray(math.sqrt(self.config.text.d_model), projected.dtype)

  def embed(self, tokens: Array) -> Array:
    return self.text_model.embed(tokens)

  def prefill(self, embedded, mask, deterministic: bool = True):
    return self.text_model.prefill(embedded, mask, deterministic)

  def continue_from(self, prefilled, prefix_mask, embedded, deterministic=True, decode=False):
    return self.text_model.continue_from(prefilled, prefix_mask, embedded, deterministic, decode)

  def joint_embeddings(self, encoder_input_tokens, images) -> Tuple[Array, Array]:
    image, text = self.embed_image(images), self.embed(encoder_input_tokens)
    return image_text.join(image, text, encoder_input_tokens, self.config.pad_token_id)

  def encode_for_decoder(self, encoder_input_tokens, images=None, **unused):
    emb, mask = self.joint_embeddings(encoder_input_tokens, images)
    return self.prefill(emb, mask), mask

  def decode(
    self,
    encoded,
    encoder_mask,
    decoder_input_tokens,
    *unused,
    deterministic=True,
    decode=False,
    **unused_kw,
  ):
    return self.continue_from(
      encoded, encoder_mask, self.embed(decoder_input_tokens), deterministic, decode
    )

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
    prefilled = self.prefill(emb, mask, deterministic)
    return self.continue_from(prefilled, mask, self.embed(decoder_input_tokens), deterministic)


def dummy_images(config: PaliGemmaConfig, batch: int = 1) -> Array:
  v = config.vision
  return jnp.zeros((batch, v.image_size, v.image_size, v.num_channels), jnp.float32)


def init_params(config: PaliGemmaConfig, rng: Array) -> Dict[str, Any]:
  variables = jax.jit(PaliGemma(config).init)(
    rng, jnp.ones((1, 4), jnp.int32), jnp.ones((1, 3), jnp.int32), images=dummy_images(config)
  )
  return nn.unbox(variables["params"])


def abstract_params(config: PaliGemmaConfig, lora: Optional[layers.LoraSpec] = None):
  model = PaliGemma(config, lora=lora)
  return jax.eval_shape(
    lambda: model.init(
      jax.random.PRNGKey(0),
      jnp.ones((1, 4), jnp.int32),
      jnp.ones((1, 3), jnp.int32),
      images=dummy_images(config),
    )
  )
