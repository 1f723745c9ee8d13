"""A small random text batch in the trainer's layout, shared by the method tests."""

import jax.numpy as jnp
import numpy as np


def text_batch(
  vocab_size, seed=0, b=4, lin=9, ltgt=5, num_tasks=0, input_lengths=None, padded_target_row=2
):
  """Random ids with padding in some rows (by default the inputs of rows 1 and 3 stop at 6 and 4,
  `input_lengths` gives each row's length; the target of `padded_target_row` stops at 3), the
  shifted decoder input, loss weights, and with `num_tasks` a task id per row (round robin)."""
  rs = np.random.RandomState(seed)
  enc = rs.randint(3, vocab_size, (b, lin)).astype(np.int32)
  for row, n in enumerate(input_lengths or [lin, 6, lin, 4][:b]):
    enc[row, n:] = 0
  tgt = rs.randint(3, vocab_size, (b, ltgt)).astype(np.int32)
  tgt[padded_target_row, 3:] = 0
  dec_in = np.concatenate([np.zeros((b, 1), np.int32), tgt[:, :-1]], 1)
  batch = dict(
    encoder_input_tokens=enc,
    decoder_input_tokens=dec_in,
    decoder_target_tokens=tgt,
    decoder_loss_weights=(tgt > 0).astype(np.float32),
  )
  if num_tasks:
    batch["task_id"] = (np.arange(b) % num_tasks).astype(np.int32)
  return {k: jnp.asarray(v) for k, v in batch.items()}
