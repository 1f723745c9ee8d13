"""Helpers for the converter tests: random Hugging Face T5 references and padded token batches.

Imported by test modules only after `pytest.importorskip("torch")` / `("transformers")`, so a
machine without the reference skips those tests instead of failing to collect them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers

from adalink.models import t5

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


def hf_model(
  seed: int,
  vocab: int,
  feed_forward_proj: str,
  tie: bool,
  separate_head: bool,
  num_layers: int = 2,
  num_decoder_layers: int = 2,
  d_model: int = 32,
  num_heads: int = 4,
  d_kv: int = 6,
  d_ff: int = 64,
  max_distance: int = 20,
):
  """A random float32 T5ForConditionalGeneration (eager attention, no dropout).

  Layer-norm scales are randomised too (transformers initialises them to one, which would hide
  a mix-up between them). `separate_head` gives the output layer its own random weights; without
  it transformers 5 shares `shared.weight` as the head even when the config is untied.
  """
  torch.manual_seed(seed)
  cfg = transformers.T5Config(
    vocab_size=vocab,
    d_model=d_model,
    d_kv=d_kv,
    d_ff=d_ff,
    num_layers=num_layers,
    num_decoder_layers=num_decoder_layers,
    num_heads=num_heads,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=max_distance,
    dropout_rate=0.0,
    feed_forward_proj=feed_forward_proj,
    tie_word_embeddings=tie,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
    attn_implementation="eager",
  )
  model = transformers.T5ForConditionalGeneration(cfg).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if name.endswith("layer_norm.weight"):
        p.uniform_(0.5, 1.5)
    if separate_head:
      model.lm_head.weight = torch.nn.Parameter(torch.randn(vocab, d_model))
  return model


def padded_batch(rng: np.random.RandomState, lengths, max_len: int, vocab: int) -> np.ndarray:
  """Rows of random ids in [2, vocab) (never pad 0 or EOS 1), right-padded with 0."""
  out = np.zeros((len(lengths), max_len), np.int32)
  for i, n in enumerate(lengths):
    out[i, :n] = rng.randint(2, vocab, n)
  return out


def shift_right(targets: np.ndarray) -> np.ndarray:
  """Decoder inputs: the start id 0, then the targets but the last."""
  return np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)


def hf_logits(model, enc: np.ndarray, targets: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    out = model(
      input_ids=torch.tensor(enc, dtype=torch.long),
      attention_mask=torch.tensor(enc != 0, dtype=torch.long),
      decoder_input_ids=torch.tensor(shift_right(targets), dtype=torch.long),
      decoder_attention_mask=torch.tensor(targets != 0, dtype=torch.long),
    )
  return out.logits.float().numpy()


_APPLY = {}


def flax_logits(config: t5.T5Config, params, enc: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """Logits of the project's model (one jitted apply per config, reused across tests)."""
  if config not in _APPLY:
    model = t5.T5(config)
    _APPLY[config] = jax.jit(lambda p, e, d, t: model.apply({"params": p}, e, d, t))
  out = _APPLY[config](
    params, jnp.asarray(enc), jnp.asarray(shift_right(targets)), jnp.asarray(targets)
  )
  return np.asarray(out, np.float32)


def max_diff_at_targets(a: np.ndarray, b: np.ndarray, targets: np.ndarray) -> float:
  """Largest |a - b| over the positions whose target is real (not padding)."""
  real = targets != 0
  return float(np.abs(a[real] - b[real]).max())
