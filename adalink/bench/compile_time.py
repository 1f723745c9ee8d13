"""Compile time and step time of a T5 training step with unrolled vs scanned layers and each remat
policy (`model.scan_layers`, `model.remat`).

The step is a full fine-tuning one without the optimiser (loss and gradients of every weight, the
part whose compile time grows with depth): random weights at a named size, dropout 0, a batch of
random token ids. Compile time is `jit(...).lower(...).compile()` wall time with JAX's persistent
compilation cache off; step time is the mean of `steps` timed calls after one warm-up call.
"""

from __future__ import annotations

import dataclasses
import time
from typing import List, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from adalink.models import layer_stack, t5


@dataclasses.dataclass
class Timing:
  size: str
  scan: bool
  remat: str
  layers: int
  compile_s: float
  step_s: float
  loss: float


def _batch(cfg: t5.T5Config, batch: int, inputs: int, targets: int):
  rng = np.random.RandomState(0)
  enc = rng.randint(2, cfg.vocab_size, (batch, inputs)).astype(np.int32)
  tgt = rng.randint(2, cfg.vocab_size, (batch, targets)).astype(np.int32)
  dec = np.concatenate([np.zeros((batch, 1), np.int32), tgt[:, :-1]], axis=1)
  return jnp.asarray(enc), jnp.asarray(dec), jnp.asarray(tgt)


def measure(
  size: str,
  scan: bool,
  remat: str,
  batch: int = 2,
  inputs: int = 64,
  targets: int = 16,
  steps: int = 3,
  dtype: str = "float32",
) -> Timing:
  cfg = t5.get_config(size, dropout_rate=0.0, dtype=dtype)
  params = t5.init_params(cfg, jax.random.PRNGKey(0))
  if scan:
    params = layer_stack.stack_layers(params)
  cfg = cfg.replace(scan_layers=scan, remat=remat)
  model = t5.T5(cfg)
  enc, dec, tgt = _batch(cfg, batch, inputs, targets)

  def loss_fn(p):
    logits = model.apply({"params": p}, enc, dec, tgt).astype(jnp.float32)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), tgt[..., None], -1)[..., 0]
    return -logp.mean()

  step = jax.jit(jax.value_and_grad(loss_fn))
  start = time.perf_counter()
  compiled = step.lower(params).compile()
  compile_s = time.perf_counter() - start
  loss, grads = compiled(params)
  jax.block_until_ready(grads)
  start = time.perf_counter()
  for _ in range(steps):
    loss, grads = compiled(params)
  jax.block_until_ready(grads)
  step_s = (time.perf_counter() - start) / steps
  return Timing(
    size,
    scan,
    remat,
    cfg.num_encoder_layers + cfg.num_decoder_layers,
    compile_s,
    step_s,
    float(loss),
  )


def run(sizes: Sequence[str], policies: Sequence[str], log=print, **kwargs) -> List[Timing]:
  """Every (size, unrolled/scanned, remat policy); each row is logged as it finishes."""
  jax.config.update("jax_enable_compilation_cache", False)
  rows = []
  for size in sizes:
    for scan in (False, True):
      for remat in policies:
        row = measure(size, scan, remat, **kwargs)
        log(format_row(row))
        rows.append(row)
  return rows


HEADER = (
  "| size | layers (enc+dec) | layout | remat | compile (s) | step (s) | loss |\n"
  "|---|---|---|---|---|---|---|"
)


def format_row(r: Timing) -> str:
  layout = "scanned" if r.scan else "unrolled"
  return (
    f"| {r.size} | {r.layers} | {layout} | {r.remat} | {r.compile_s:.1f} | {r.step_s:.2f} | "
    f"{r.loss:.5f} |"
  )


def table(rows: Sequence[Timing]) -> str:
  return "\n".join([HEADER] + [format_row(r) for r in rows])
