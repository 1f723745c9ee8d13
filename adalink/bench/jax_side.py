"""This codebase's side of the benchmark: a method's compiled train step on random weights, and
inference (encoder, then the 8-step greedy decoder loop) for the base, AdaLink as a module and
folded, LoRA unmerged and merged, and prompt tuning. Optimiser-state sizes from shapes."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from adalink.bench import timing
from adalink.bench.options import BenchmarkOptions, infer_order
from adalink.models import t5
from adalink.peft import adalink as adalink_lib
from adalink.peft import lora as lora_lib
from adalink.peft import methods
from adalink.train import decoding
from adalink.train import step as step_lib


def jax_method_cfg(method: str, rank: Optional[int], n_prompts: int) -> Dict[str, Any]:
  """The method section of a benchmark row (prompt tuning without its reparameterisation)."""
  if method == "pt":
    return {"name": "pt", "num_prompts": n_prompts, "reparam_hidden": 0}
  if method == "ft":
    return {"name": "ft"}
  return {"name": method, "rank": rank}


def random_variables(model, seed: int, base_params=None):
  """Variables of `model` filled with N(0, 0.02) noise from their shapes (numpy, no XLA init).

  Cost does not depend on the values, and compiling the model's init would add several seconds
  of XLA compilation per measurement that is not part of any cost reported. Given
  `base_params`, only the other collections (the adapters) are drawn.
  """
  if isinstance(model, methods.PeftT5):
    abstract = nn.unbox(methods.abstract_variables(model))
  else:  # the bare T5
    abstract = {
      "params": nn.unbox(
        jax.eval_shape(lambda: t5.init_params(model.config, jax.random.PRNGKey(0)))
      )
    }
  rng = np.random.default_rng(seed)

  def fill(x):
    if np.issubdtype(x.dtype, np.floating) or x.dtype == jnp.bfloat16:
      return jnp.asarray((0.02 * rng.standard_normal(x.shape, np.float32)).astype(x.dtype))
    return jnp.zeros(x.shape, x.dtype)

  out = {}
  for col, tree in abstract.items():
    out[col] = (
      base_params
      if col == "params" and base_params is not None
      else jax.tree_util.tree_map(fill, tree)
    )
  return out


def jax_train_step(options: BenchmarkOptions, method: str, rank: Optional[int]) -> Dict[str, Any]:
  """The benchmark's compiled train step for one method: -> dict with `run_one` (one step,
  returns the loss), the compile time, and the trainable/optimiser state for counting."""
  o = options
  cfg = t5.get_config(o.size, dtype=o.dtype, dropout_rate=0.1)
  spec = methods.spec_from_config(jax_method_cfg(method, rank, o.prompts), cfg.d_model)
  model = methods.build_model(cfg, spec)
  variables = random_variables(model, 0)
  trainable, frozen = methods.split_variables(spec, variables)
  tx = optax.adafactor(1e-3, multiply_by_parameter_scale=False)
  opt_state = tx.init(trainable)
  rs = np.random.RandomState(0)
  batch = {
    "encoder_input_tokens": rs.randint(2, cfg.vocab_size, (o.batch, o.input_len)),
    "decoder_target_tokens": rs.randint(2, cfg.vocab_size, (o.batch, o.target_len)),
  }
  batch["decoder_input_tokens"] = np.concatenate(
    [np.zeros((o.batch, 1), np.int64), batch["decoder_target_tokens"][:, :-1]], 1
  )
  batch = {k: jnp.asarray(v, jnp.int32) for k, v in batch.items()}
  batch["decoder_loss_weights"] = jnp.ones((o.batch, o.target_len), jnp.float32)
  step = jax.jit(step_lib.make_train_step(model, tx), donate_argnums=(0, 1))
  t = time.perf_counter()
  compiled = step.lower(trainable, opt_state, frozen, batch, jax.random.PRNGKey(1)).compile()
  compile_s = time.perf_counter() - t
  state = {"t": trainable, "o": opt_state, "i": 0}

  def run_one():
    state["i"] += 1
    state["t"], state["o"], m = compiled(
      state["t"], state["o"], frozen, batch, jax.random.PRNGKey(state["i"])
    )
    return m["loss"]

  return {
    "run_one": run_one,
    "compile_s": compile_s,
    "state": state,
    "total_params": methods.count_params(variables["params"]),
  }


def jax_train(options: BenchmarkOptions, method: str, rank: Optional[int]) -> Dict[str, Any]:
  built = jax_train_step(options, method, rank)
  median, times = timing.timed(
    built["run_one"], options.steps, options.warmup, lambda x: x.block_until_ready()
  )
  dev = jax.devices()[0]
  stats = dev.memory_stats() if dev.platform != "cpu" else None
  peak = (
    stats["peak_bytes_in_use"]
    if stats and "peak_bytes_in_use" in stats
    else timing.peak_rss_bytes()
  )
  state = built["state"]
  leaves = jax.tree_util.tree_leaves(state["o"])
  return {
    "compile_s": built["compile_s"],
    "step_s": median,
    "step_times": times,
    "trainable_params": methods.count_params(state["t"]),
    "total_params": built["total_params"],
    "opt_state_bytes": int(sum(x.size * x.dtype.itemsize for x in leaves)),
    "peak_bytes": int(peak),
    "peak_kind": "device" if stats else "rss",
    "device": dev.device_kind,
  }


def jax_infer(options: BenchmarkOptions) -> Dict[str, Any]:
  o = options
  cfg = t5.get_config(o.size, dtype=o.dtype, dropout_rate=0.0)
  base = random_variables(t5.T5(cfg), 0)["params"]
  rs = np.random.RandomState(0)
  tokens = jnp.asarray(rs.randint(2, cfg.vocab_size, (o.batch, o.input_len)), jnp.int32)

  def peft(method_cfg, seed):
    spec = methods.spec_from_config(method_cfg, cfg.d_model)
    model = methods.build_model(cfg, spec)
    return spec, model, random_variables(model, seed, base)

  variants = {"base": (t5.T5(cfg), {"params": base})}
  _, m, v = peft({"name": "adalink", "rank": 4}, 1)
  variants["adalink_module"] = (m, v)
  folded = adalink_lib.folded_serving_params(base, v["adapters"])
  variants["adalink_folded"] = (
    t5.T5(cfg.replace(separate_encoder_embedding=True)),
    {"params": folded},
  )
  spec, m, v = peft({"name": "lora", "rank": 4}, 2)
  variants["lora_unmerged"] = (m, v)
  variants["lora_merged"] = (
    t5.T5(cfg),
    {"params": lora_lib.merge_lora(base, v["adapters"], spec.rank, spec.alpha)},
  )
  _, m, v = peft({"name": "pt", "num_prompts": o.prompts}, 3)
  variants["pt"] = (m, v)

  encode, decode = {}, {}
  for name in infer_order(o.base_repeats):
    model, variables = variants[name.split("#")[0]]
    if "#" in name:
      # A repeat of the base is built again (own weight buffers, own compiled encoder), so the
      # noise it measures includes what differs between two builds of one model, as between
      # the folded and the base model.
      variables = jax.tree_util.tree_map(jnp.copy, variables)
    enc = jax.jit(lambda v, x, model=model: model.apply(v, x, method="encode_for_decoder"))
    encode[name] = lambda enc=enc, variables=variables: enc(variables, tokens)
    encoded, enc_mask = encode[name]()
    # eos_id=-1 never matches: every variant decodes exactly 8 tokens.
    decode[name] = lambda model=model, variables=variables, e=encoded, m=enc_mask: (
      decoding.greedy_decode_encoded(model, variables, e, m, 8, eos_id=-1)
    )
  sync = lambda x: jax.block_until_ready(x)
  enc_t = timing.interleaved(encode, o.steps, o.warmup, sync)
  dec_t = timing.interleaved(decode, o.steps, o.warmup, sync)
  return timing.infer_summary({n: {"encode": enc_t[n], "decode8": dec_t[n]} for n in encode})


def state_bytes_from_shapes(size: str, method_cfg: dict, optimizer: str) -> int:
  """Optimiser-state bytes for a method at a model size, from shapes only (nothing allocated)."""
  cfg = t5.get_config(size)
  spec = methods.spec_from_config(method_cfg, cfg.d_model)
  abstract = methods.abstract_variables(methods.build_model(cfg, spec))
  trainable, _ = methods.split_variables(spec, nn.unbox(abstract))
  tx = (
    optax.adafactor(1e-3, multiply_by_parameter_scale=False)
    if optimizer == "adafactor"
    else optax.adamw(1e-3)
  )
  state = jax.eval_shape(tx.init, trainable)
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state)))
