"""Many tasks in one batch, at what cost: decoding a batch whose examples belong to different tasks.

This codebase serves per-task AdaLink folded: each example gathers its encoder inputs from its own
task's folded vocabulary table ([tasks, vocab, d]), one lookup, as the base model does. Beside it,
on the same shapes: the base model, the per-task AdaLink module (each example's adapter gathered
and applied), and the mixed-adapter batch of Hugging Face PEFT (LoRA adapters, one per task,
chosen per example with `generate(adapter_names=...)`) with the PyTorch base. Every variant
encodes the batch and decodes exactly 8 tokens greedily; rounds are interleaved and the median is
reported. Weights are random: cost does not depend on their values.
"""

from __future__ import annotations

import statistics
from typing import Any, Dict, List

import numpy as np

from adalink.bench import timing
from adalink.bench.options import BenchmarkOptions

DECODE_STEPS = 8


def _task_ids(options: BenchmarkOptions, num_tasks: int) -> np.ndarray:
  return (np.arange(options.batch) % num_tasks).astype(np.int32)


def jax_mixed(options: BenchmarkOptions, num_tasks: int, rank: int = 4) -> Dict[str, List[float]]:
  """name -> per-round seconds of encode + 8 greedy steps, for the JAX variants."""
  import jax
  import jax.numpy as jnp

  from adalink.bench.jax_side import random_variables
  from adalink.models import t5
  from adalink.peft import methods, serving
  from adalink.train import decoding

  o = options
  cfg = t5.get_config(o.size, dtype=o.dtype, dropout_rate=0.0)
  base = random_variables(t5.T5(cfg), 0)["params"]
  spec = methods.spec_from_config(
    {"name": "adalink", "rank": rank, "per_task": True}, cfg.d_model, num_tasks=num_tasks
  )
  model = methods.build_model(cfg, spec)
  variables = random_variables(model, 1, base)
  folded = serving.serving_form(model, variables)
  tokens = jnp.asarray(np.random.RandomState(0).randint(2, cfg.vocab_size, (o.batch, o.input_len)))
  task_id = jnp.asarray(_task_ids(o, num_tasks))

  def run(module, v, **features):
    # eos_id=-1 never matches: every variant decodes exactly DECODE_STEPS tokens.
    return lambda: decoding.greedy_decode(module, v, tokens, DECODE_STEPS, eos_id=-1, **features)

  fns = {
    "jax base": run(t5.T5(cfg), {"params": base}),
    f"jax AdaLink folded, {num_tasks} tasks mixed": run(
      folded.module, folded.variables, task_id=task_id
    ),
    f"jax AdaLink module, {num_tasks} tasks mixed": run(model, variables, task_id=task_id),
  }
  return timing.interleaved(fns, o.steps, o.warmup, jax.block_until_ready)


def torch_mixed(options: BenchmarkOptions, num_tasks: int, rank: int = 4) -> Dict[str, List[float]]:
  """name -> per-round seconds for the PyTorch base and PEFT's mixed-adapter LoRA batch."""
  import os

  import peft
  import torch

  from adalink.bench.torch_side import torch_model

  o = options
  torch.set_num_threads(os.cpu_count())
  cfg, base = torch_model(o)
  base = base.eval()
  _, lora = torch_model(o)
  lora_cfg = peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q", "v"])
  lora = peft.get_peft_model(lora, lora_cfg, adapter_name="task0")
  for t in range(1, num_tasks):
    lora.add_adapter(f"task{t}", lora_cfg)
  lora = lora.eval()
  ids = torch.tensor(np.random.RandomState(0).randint(2, cfg.vocab_size, (o.batch, o.input_len)))
  names = [f"task{t}" for t in _task_ids(o, num_tasks)]

  def run(model, **kw):
    def call():
      with torch.no_grad():
        return model.generate(
          input_ids=ids,
          attention_mask=torch.ones_like(ids),
          max_new_tokens=DECODE_STEPS,
          min_new_tokens=DECODE_STEPS,
          do_sample=False,
          num_beams=1,
          **kw,
        )

    return call

  fns = {
    "torch base": run(base),
    f"torch PEFT LoRA, {num_tasks} adapters mixed (adapter_names)": run(lora, adapter_names=names),
  }
  return timing.interleaved(fns, o.steps, o.warmup, lambda x: None)


def table(times: Dict[str, List[float]], options: BenchmarkOptions, num_tasks: int) -> str:
  """A markdown table: median ms per batch and the ratio to the same framework's base."""
  medians = {name: statistics.median(t) for name, t in times.items()}
  lines = [
    f"size {options.size}, batch {options.batch} x {options.input_len} input tokens, "
    f"{num_tasks} tasks, encode + {DECODE_STEPS} greedy steps, median of {options.steps} rounds",
    "",
    "| variant | ms / batch | vs its framework's base |",
    "|---|---|---|",
  ]
  for name, median in medians.items():
    base = medians[name.split(" ")[0] + " base"]
    lines.append(f"| {name} | {1000 * median:.1f} | {median / base:.2f} |")
  return "\n".join(lines)


def run(options: BenchmarkOptions, num_tasks: int, torch_side: bool = True) -> Dict[str, Any]:
  if num_tasks < 2:
    raise ValueError(f"num_tasks must be >= 2 for a mixed batch, got {num_tasks}")
  times = jax_mixed(options, num_tasks)
  if torch_side:
    times.update(torch_mixed(options, num_tasks))
  return {"times": times, "table": table(times, options, num_tasks)}
