"""The PEFT wrappers of the decoder-only Gemma (`adalink.models.gemma`) and of PaliGemma
(`adalink.models.paligemma`, SigLIP image tokens + Gemma).

The wrapper keeps Gemma's encoder-decoder face (prefix = "encoder", continuation = "decoder"), so
the trainer and the decoders run it as they run T5. Methods reach it through the same seams:

  * the prefix's token embeddings go through the method's input-embedding hook (`embed`) as the
    stream 'text': AdaLink maps them, prompt tuning puts its soft tokens before them;
  * the continuation's token embeddings (the label words in training, each generated token in
    decoding) go through `embed_continuation`: a per-token map such as AdaLink applies there too,
    since in a decoder-only model they are read from the same input table; methods that insert
    tokens do nothing there;
  * LoRA attaches to every layer's projections (`query`, `key`, `value`, `out`, `wi_0`, `wi_1`,
    `wo`), there being no separate encoder;
  * FT trains every weight of the decoder.

A per-example `task_id` is kept beside the prefilled keys and values, so per-task adapters keep
choosing the example's adapter for every generated token. No encoder node hook is exposed, so
placement is refused here.

PaliGemma's prefix has two streams, 'image' (the projected SigLIP tokens) and 'text' (the
prompt), handed to the hook apart and joined as [image; text] after it: an adapter on one
modality cannot touch the other's embeddings, and prompt tuning's soft tokens land between the
image tokens and the prompt. FT trains the decoder and the projection; the SigLIP tower stays
frozen.
"""

from __future__ import annotations

from typing import Any, Dict

import jax.numpy as jnp
import flax.linen as nn

from adalink.models.gemma import Gemma
from adalink.models.gemma_config import GemmaConfig
from adalink.models.paligemma import PaliGemma, PaliGemmaConfig, dummy_images
from adalink.peft.multimodal import MODALITY_STREAMS, embed_image_and_text
from adalink.peft.base import (
  TEXT_STREAMS,
  InputContext,
  MethodSpec,
  ModelInfo,
  check_supported,
  register_wrapper,
)

_TASK_ID = "task_id"


class PeftGemma(nn.Module):
  config: GemmaConfig
  spec: MethodSpec

  @classmethod
  def model_info(cls, config: GemmaConfig) -> ModelInfo:
    return ModelInfo(
      kind="gemma",
      description="the decoder-only Gemma (model.kind='gemma')",
      streams=TEXT_STREAMS,
      d_model=config.d_model,
      num_encoder_layers=config.num_layers,
      dtype=config.jnp_dtype,
    )

  def setup(self):
    s = self.spec
    check_supported(s, self.model_info(self.config))
    self.base = Gemma(self.config, lora=s.lora_spec)
    nn.share_scope(self, self.base)
    self.adapter = s.make_module(self.model_info(self.config))

  def example_inputs(self, batch: int = 1) -> Dict[str, Any]:
    kw = dict(
      encoder_input_tokens=jnp.ones((batch, 4), jnp.int32),
      decoder_input_tokens=jnp.ones((batch, 3), jnp.int32),
    )
    if self.spec.num_tasks > 1:
      kw[_TASK_ID] = jnp.zeros((batch,), jnp.int32)
    return kw

  def _context(self, task_id, deterministic) -> InputContext:
    return InputContext(task_id, deterministic, lambda: self.base.token_embedder.embedding)

  def embed_inputs(self, encoder_input_tokens, task_id=None, deterministic: bool = True):
    """The prefix's embeddings and mask after the method's input-embedding hook."""
    streams = {"text": self.base.embed(encoder_input_tokens)}
    masks = {"text": encoder_input_tokens != self.config.pad_token_id}
    streams, masks = self.spec.embed(
      self.adapter, streams, masks, self._context(task_id, deterministic)
    )
    return streams["text"], masks["text"]

  def encode_for_decoder(self, encoder_input_tokens, task_id=None, deterministic=True, **unused):
    emb, mask = self.embed_inputs(encoder_input_tokens, task_id, deterministic)
    prefilled = self.base.prefill(emb, mask, deterministic)
    if task_id is not None:
      prefilled = {**prefilled, _TASK_ID: jnp.asarray(task_id, jnp.int32)}
    return prefilled, mask

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
    del decoder_target_tokens, encoder_segment_ids, decoder_segment_ids, decoder_positions
    streams = {"text": self.base.embed(decoder_input_tokens)}
    ctx = self._context(encoded.get(_TASK_ID), deterministic)
    emb = self.spec.embed_continuation(self.adapter, streams, ctx)["text"]
    return self.base.continue_from(encoded, encoder_mask, emb, deterministic, decode)

  def __call__(
    self,
    encoder_input_tokens,
    decoder_input_tokens,
    decoder_target_tokens=None,
    task_id=None,
    deterministic: bool = True,
    **unused,
  ):
    if unused.get("encoder_segment_ids") is not None:
      raise ValueError("the decoder-only model does not take packed rows: set data.pack = False")
    self.spec.check_inputs(packed=False)
    encoded, mask = self.encode_for_decoder(encoder_input_tokens, task_id, deterministic)
    return self.decode(encoded, mask, decoder_input_tokens, deterministic=deterministic)


register_wrapper(GemmaConfig, PeftGemma)


class PeftPaliGemma(PeftGemma):
  config: PaliGemmaConfig
  spec: MethodSpec

  @classmethod
  def model_info(cls, config: PaliGemmaConfig) -> ModelInfo:
    return ModelInfo(
      kind="paligemma",
      description="PaliGemma (model.kind='paligemma')",
      streams=MODALITY_STREAMS,
      d_model=config.text.d_model,
      num_encoder_layers=config.text.num_layers,
      dtype=config.text.jnp_dtype,
    )

  def setup(self):
    s = self.spec
    check_supported(s, self.model_info(self.config))
    self.base = PaliGemma(self.config, lora=s.lora_spec)
    nn.share_scope(self, self.base)
    self.adapter = s.make_module(self.model_info(self.config))

  def example_inputs(self, batch: int = 1) -> Dict[str, Any]:
    return {**super().example_inputs(batch), "images": dummy_images(self.config, batch)}

  def _context(self, task_id, deterministic) -> InputContext:
    return InputContext(
      task_id, deterministic, lambda: self.base.text_model.token_embedder.embedding
    )

  def embed_inputs(
    self, encoder_input_tokens, images=None, task_id=None, deterministic: bool = True
  ):
    """([image; prompt] embeddings after the method's hook, mask)."""
    ctx = self._context(task_id, deterministic)
    return embed_image_and_text(self, encoder_input_tokens, images, ctx, "PaliGemma")

  def encode_for_decoder(
    self, encoder_input_tokens, images=None, task_id=None, deterministic=True, **unused
  ):
    emb, mask = self.embed_inputs(encoder_input_tokens, images, task_id, deterministic)
    prefilled = self.base.prefill(emb, mask, deterministic)
    if task_id is not None:
      prefilled = {**prefilled, _TASK_ID: jnp.asarray(task_id, jnp.int32)}
    return prefilled, mask

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
      raise ValueError("PaliGemma does not take packed rows: set data.pack = False")
    self.spec.check_inputs(packed=False)
    encoded, mask = self.encode_for_decoder(encoder_input_tokens, images, task_id, deterministic)
    return self.decode(encoded, mask, decoder_input_tokens, deterministic=deterministic)


register_wrapper(PaliGemmaConfig, PeftPaliGemma)
