"""The PEFT wrapper of the PaLI-style image+text model.

The encoder reads `[image; text]`: the wrapper hands the method's input-embedding hook the two
streams (`MODALITY_STREAMS`) with their masks and concatenates whatever comes back in that order.
So AdaLink here is per modality (each stream passes its own adapter, or one `unified` adapter, the
paper's Table 3 baseline, before the concatenation, so an adapter on one modality can never touch
the other's embeddings), and prompt tuning, which prepends its soft tokens to the text stream,
gives `[image; prompt; text]`: image tokens keep positions 0..N-1, as they have in the base model,
and only the text moves (by n, which relative position biases do not see within the text). LoRA
attaches to the T5 encoder's projections; FT trains the T5 and the projection while the ViT stays
frozen (its output carries no gradient, and `adalink.peft.ft.FROZEN_IN_FT` keeps its weights out
of the optimiser). The wrapper exposes no encoder node hook, so methods that need one (placement)
are refused here (`adalink.peft.base.check_supported`).
"""

from __future__ import annotations

from typing import Any, Dict

import jax.numpy as jnp
import flax.linen as nn

from adalink.models.pali import PaLI, PaLIConfig
from adalink.peft.base import (
  InputContext,
  MethodSpec,
  ModelInfo,
  check_supported,
  register_wrapper,
)

MODALITY_STREAMS = ("image", "text")


def embed_image_and_text(wrapper, tokens, images, ctx: InputContext, model_name: str):
  """An image+text wrapper's input: the base's image tokens and text embeddings as two streams,
  each with its mask, through the method's input hook (`spec.embed`: AdaLink per modality,
  prompts after the image tokens), then joined as [image; text] -> (embeddings, mask)."""
  if images is None:
    raise ValueError(f"{model_name} needs an 'images' feature in every batch")
  image, text = wrapper.base.embed_image(images), wrapper.base.embed(tokens)
  streams = {"image": image, "text": text}
  masks = {"image": jnp.ones(image.shape[:2], bool), "text": tokens != wrapper.config.pad_token_id}
  streams, masks = wrapper.spec.embed(wrapper.adapter, streams, masks, ctx)
  dtype = streams["text"].dtype
  emb = jnp.concatenate([streams[k].astype(dtype) for k in MODALITY_STREAMS], axis=1)
  return emb, jnp.concatenate([masks[k] for k in MODALITY_STREAMS], axis=1)


class PeftPaLI(nn.Module):
  config: PaLIConfig
  spec: MethodSpec

  @classmethod
  def model_info(cls, config: PaLIConfig) -> ModelInfo:
    return ModelInfo(
      kind="pali",
      description="the image+text model (model.kind='pali')",
      streams=MODALITY_STREAMS,
      d_model=config.text.d_model,
      num_encoder_layers=config.text.num_encoder_layers,
      dtype=config.text.jnp_dtype,
    )

  def setup(self):
    s = self.spec
    check_supported(s, self.model_info(self.config))
    self.base = PaLI(self.config, lora=s.lora_spec, lora_decoder=s.lora_decoder)
    nn.share_scope(self, self.base)
    self.adapter = s.make_module(self.model_info(self.config))

  def example_inputs(self) -> Dict[str, Any]:
    """Inputs that touch every variable, for init and shape inference (needs no binding)."""
    return dummy_inputs(self.config, self.spec)

  def embed_inputs(self, encoder_input_tokens, images, task_id=None, deterministic: bool = True):
    """([image; text] embeddings after the method's hook, mask) as the encoder receives them."""
    ctx = InputContext(
      task_id, deterministic, lambda: self.base.text_model.token_embedder.embedding
    )
    return embed_image_and_text(self, encoder_input_tokens, images, ctx, "the image+text model")

  def encode_embedded(self, emb, mask, deterministic: bool = True):
    """The encoder on the joint embeddings, through the method's encoder hook."""

    def run(node_hook):
      if node_hook is not None:
        raise ValueError("the image+text model's wrapper exposes no encoder node hook")
      return self.base.encode_embedded(emb, mask, deterministic=deterministic)

    return self.spec.encode(self.adapter, run, self.model_info(self.config), deterministic)

  def encode_for_decoder(self, encoder_input_tokens, images=None, task_id=None, **unused):
    emb, mask = self.embed_inputs(encoder_input_tokens, images, task_id)
    return self.encode_embedded(emb, mask), mask

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
    self.spec.check_inputs(packed=False)
    emb, mask = self.embed_inputs(encoder_input_tokens, images, task_id, deterministic)
    encoded = self.encode_embedded(emb, mask, deterministic)
    return self.decode(
      encoded, mask, decoder_input_tokens, decoder_target_tokens, deterministic=deterministic
    )


register_wrapper(PaLIConfig, PeftPaLI)


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
