"""Prompt tuning (`method.name = 'pt'`): soft tokens before the text, residual reparameterisation.

The trained prompt is `P' = P + LayerNorm(W_up relu(W_down P))` (Razdaibiedina et al. 2023,
"Residual Prompt Tuning"): the two-layer network with a skip connection makes optimisation far
less sensitive to the learning rate and init than training `P` directly. After training, `P'` can
be computed once and stored; the network is only a training-time device, which is why its weights
are counted apart from the prompt's own `n x d`.

Init of `P`: rows of the vocabulary table at sampled token ids ("vocab", the rows of the frozen
model the adapters were initialised against) or uniform in [-0.5, 0.5] ("uniform").

As a method its hook is the input-embedding one: the prompt goes before the text stream, so on
the text T5 the encoder reads `[prompt; text]` and on the image+text model `[image; prompt; text]`
(image tokens keep their positions). Config fields: `num_prompts` (n, default 64),
`reparam_hidden` (0 = train P directly), `prompt_init` ("vocab" or "uniform"), `dropout_rate`
(on the prompt, default 0.05). Packed inputs are refused: a prompt belongs to one example per row.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import flax.linen as nn
from flax import traverse_util

from adalink.models import layers
from adalink.peft.base import MethodSpec, dropout_field, register_method

Array = jax.Array

PROMPT_INITS = ("vocab", "uniform")


class PromptTuning(nn.Module):
  """Returns [b, n + l, d] embeddings and the matching [b, n + l] mask."""

  length: int
  reparam_hidden: int = 0  # 0 = train P directly
  init: str = "vocab"
  dropout_rate: float = 0.05
  vocab_size_for_init: int = 0  # rows to sample from (excludes ids past the real vocabulary)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(
    self,
    embeddings: Array,
    mask: Array,
    vocab_table: Optional[Array] = None,
    deterministic: bool = True,
  ):
    d = embeddings.shape[-1]
    prompt = layers.param_with_axes(
      self,
      "prompt",
      self._init_fn(vocab_table),
      (self.length, d),
      jnp.float32,
      ("prompt", layers.EMBED),
      layers.ADAPTERS,
    )
    p = prompt.astype(self.dtype)
    if self.reparam_hidden > 0:
      h = layers.param_with_axes(
        self,
        "reparam_down",
        nn.initializers.lecun_normal(),
        (d, self.reparam_hidden),
        jnp.float32,
        (layers.EMBED, layers.MLP),
        layers.ADAPTERS,
      )
      o = layers.param_with_axes(
        self,
        "reparam_up",
        nn.initializers.lecun_normal(),
        (self.reparam_hidden, d),
        jnp.float32,
        (layers.MLP, layers.EMBED),
        layers.ADAPTERS,
      )
      scale = layers.param_with_axes(
        self,
        "reparam_norm_scale",
        nn.initializers.ones,
        (d,),
        jnp.float32,
        (layers.EMBED,),
        layers.ADAPTERS,
      )
      bias = layers.param_with_axes(
        self,
        "reparam_norm_bias",
        nn.initializers.zeros,
        (d,),
        jnp.float32,
        (layers.EMBED,),
        layers.ADAPTERS,
      )
      r = jax.nn.relu(p @ h.astype(self.dtype)) @ o.astype(self.dtype)
      mean = r.mean(-1, keepdims=True)
      var = jnp.square(r - mean).mean(-1, keepdims=True)
      r = (r - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias
      p = p + r.astype(self.dtype)
    p = nn.Dropout(self.dropout_rate)(p, deterministic=deterministic)
    batch = embeddings.shape[0]
    p = jnp.broadcast_to(p[None], (batch,) + p.shape).astype(embeddings.dtype)
    out = jnp.concatenate([p, embeddings], axis=1)
    out_mask = jnp.concatenate([jnp.ones((batch, self.length), bool), mask.astype(bool)], axis=1)
    return out, out_mask

  def _init_fn(self, vocab_table):
    if self.init == "uniform":
      return _uniform_centered(0.5)
    if self.init != "vocab":
      raise ValueError(f"prompt init must be one of {PROMPT_INITS}, got {self.init!r}")
    if vocab_table is None:
      raise ValueError("prompt init 'vocab' needs the model's vocabulary table")

    def init(key, shape, dtype=jnp.float32):
      limit = self.vocab_size_for_init or vocab_table.shape[0]
      # Skip the special ids (pad, eos, unk) at the bottom of the table.
      ids = jax.random.randint(key, (shape[0],), 3, limit)
      return jnp.take(vocab_table, ids, axis=0).astype(dtype)

    return init


def _uniform_centered(half_width: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -half_width, half_width)

  return init


@register_method
@dataclasses.dataclass(frozen=True)
class PromptTuningMethod(MethodSpec):
  name: str = "pt"
  num_prompts: int = 64
  reparam_hidden: int = 0
  prompt_init: str = "vocab"
  dropout_rate: float = 0.05

  config_fields = ("num_prompts", "reparam_hidden", "prompt_init", "dropout_rate")

  @classmethod
  def from_config(cls, fields, ctx) -> "PromptTuningMethod":
    n = fields.get("num_prompts", 64)
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
      raise ValueError(f"method.num_prompts must be a positive integer, got {n!r}")
    hidden = fields.get("reparam_hidden", 0)
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 0:
      raise ValueError(f"method.reparam_hidden must be an integer >= 0, got {hidden!r}")
    init = fields.get("prompt_init", "vocab")
    if init not in PROMPT_INITS:
      raise ValueError(f"method.prompt_init must be one of {list(PROMPT_INITS)}, got {init!r}")
    return cls(
      num_prompts=n,
      reparam_hidden=hidden,
      prompt_init=init,
      dropout_rate=dropout_field(fields, 0.05),
    )

  def check_model(self, model) -> None:
    if "text" not in model.streams:
      raise ValueError(
        f"method.name='pt' puts its prompt before the text stream, but {model.description} "
        f"has only the streams {list(model.streams)}"
      )

  def make_module(self, model):
    return PromptTuning(
      self.num_prompts,
      self.reparam_hidden,
      self.prompt_init,
      self.dropout_rate,
      dtype=model.dtype,
      name="prompt",
    )

  def embed(self, module, streams, masks, ctx):
    text, mask = module(streams["text"], masks["text"], ctx.vocab_table(), ctx.deterministic)
    return {**streams, "text": text}, {**masks, "text": mask}

  def check_inputs(self, *, packed: bool) -> None:
    if packed:
      raise ValueError("prompt tuning does not support packed inputs: set data.pack = False")

  def extra_counts(self, trainable):
    """The prompt's own n x d (what the paper counts) and the training-only `reparam` network."""
    flat = traverse_util.flatten_dict(dict(trainable.get(layers.ADAPTERS, {})))
    prompt = int(sum(v.size for k, v in flat.items() if k[-1] == "prompt"))
    total = int(sum(v.size for v in flat.values()))
    return {"prompt": prompt, "reparam": total - prompt}
