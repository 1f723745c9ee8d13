"""The four methods on the PaLI-style image+text model.

AdaLink here is per modality: the image and text embeddings each pass their own adapter (or one
`unified` adapter, the paper's Table 3 baseline) before they are concatenated, so an adapter on
one modality can never touch the other's embeddings. Prompt tuning puts its soft tokens after the
image tokens, `[image; prompt; text]`: image tokens keep positions 0..N-1, as they have in the
base model, and only the text moves (by n, which relative position biases do not see within the
text). LoRA attaches to the T5 encoder's projections; FT trains the T5 and the projection while the
ViT stays frozen (its output carries no gradient, and `methods.FROZEN_IN_FT` keeps its weights out
of the optimiser).
"""

from __future__ import annotations

from typing import Any, Dict

import jax.numpy as jnp
import flax.linen as nn

from adalink.models.pali import PaLI, PaLIConfig
from adalink.peft import prompt as prompt_lib
from adalink.peft.methods import InputAdapters, MethodSpec

MODALITY_STREAMS = ("image", "text")


class PeftPaLI(nn.Module):
  config: PaLIConfig
  spec: MethodSpec

  def setup(self):
    s = self.spec
    if s.name not in ("ft", "lora", "pt", "adalink"):
      raise ValueError(f"method {s.name!r} is not available on the image+text model")
    self.base = PaLI(self.config, lora=s.lora_spec, lora_decoder=s.lora_decoder)
    nn.share_scope(self, self.base)
    dt = self.config.text.jnp_dtype
    if s.name == "adalink":
      self.adalink = InputAdapters(s, dt)
    if s.name == "pt":
      self.prompt = prompt_lib.PromptTuning(
        s.num_prompts, s.reparam_hidden, s.prompt_init, s.dropout_rate, dtype=dt
      )

  def example_inputs(self) -> Dict[str, Any]:
    """Inputs that touch every variable, for init and shape inference (needs no binding)."""
    return dummy_inputs(self.config, self.spec)

  def embed_inputs(self, encoder_input_tokens, images, task_id=None, deterministic: bool = True):
    """([image; (prompt;) text] embeddings, mask) as the encoder receives them."""
    if images is None:
      raise ValueError("the image+text model needs an 'images' feature in every batch")
    image = self.base.embed_image(images)
    text = self.base.embed(encoder_input_tokens)
    text_mask = encoder_input_tokens != self.config.pad_token_id
    if self.spec.name == "adalink":
      out = self.adalink({"image": image, "text": text}, task_id, deterministic)
      image, text = out["image"], out["text"]
    elif self.spec.name == "pt":
      table = self.base.text_model.token_embedder.embedding
      text, text_mask = self.prompt(text, text_mask, table, deterministic)
    emb = jnp.concatenate([image.astype(text.dtype), text], axis=1)
    mask = jnp.concatenate([jnp.ones(image.shape[:2], bool), text_mask], axis=1)
    return emb, mask

  def encode_for_decoder(self, encoder_input_tokens, images=None, task_id=None, **unused):
    emb, mask = self.embed_inputs(encoder_input_tokens, images, task_id)
    return self.base.encode_embedded(emb, mask), mask

  def decode(
    self,
    encoded,
    encoder_mask,
    decoder_input_tokens,
    decoder_target_tokens=None,
    encoder_segment_ids=None,
    decoder_segment_ids=None,
    decoder_positions=None,
    deterministic: bool = True,
    decode: bool = False,
  ):
    return self.base.decode(
      encoded,
      encoder_mask,
      decoder_input_tokens,
      decoder_target_tokens,
      encoder_segment_ids,
      decoder_segment_ids,
      decoder_positions,
      deterministic,
      decode,
    )

  def __call__(
    self,
    encoder_input_tokens,
    decoder_input_tokens,
    decoder_target_tokens=None,
    images=None,
    task_id=None,
    deterministic: bool = True,
    **unused,
  ):
    if unused.get("encoder_segment_ids") is not None:
      raise ValueError("the image+text model does not support packed inputs: set data.pack = False")
    emb, mask = self.embed_inputs(encoder_input_tokens, images, task_id, deterministic)
    encoded = self.base.encode_embedded(emb, mask, deterministic=deterministic)
    return self.decode(
      encoded, mask, decoder_input_tokens, decoder_target_tokens, deterministic=deterministic
    )


def dummy_inputs(config: PaLIConfig, spec: MethodSpec, batch: int = 1) -> Dict[str, Any]:
  v = config.vision
  kw = dict(
    encoder_input_tokens=jnp.ones((batch, 4), jnp.int32),
    decoder_input_tokens=jnp.ones((batch, 3), jnp.int32),
    images=jnp.zeros((batch, v.image_size, v.image_size, v.num_channels), jnp.float32),
  )
  if spec.num_tasks > 1:
    kw["task_id"] = jnp.zeros((batch,), jnp.int32)
  return kw
