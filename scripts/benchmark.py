#!/usr/bin/env python
r"""Cost of each method, measured side by side with Hugging Face transformers + peft (PyTorch).

  python scripts/benchmark.py                                 # T5-small dims, CPU defaults
  python scripts/benchmark.py --sizes small base --batch 32 --dtype bfloat16 --out benchmarks/h100

For every method (FT, LoRA r4/r16, PT 64, AdaLink r4/r64) and framework (this codebase in JAX, and
transformers + peft in PyTorch, with AdaLink written there as a small input-embedding module):
the median train-step time over >= 20 steps after warm-up (compile time reported apart), examples
per second, trainable parameters, optimiser-state bytes, peak memory (device memory stats on an
accelerator, the process's peak RSS on CPU, so every train measurement runs in its own process),
and on accelerators the model FLOP utilisation 6 * params * tokens / time / peak (the peak used is
printed). Then inference for the base model, AdaLink as a module, AdaLink folded into the
vocabulary table, LoRA unmerged and merged, and PT: the encoder forward and, on its output, the
8-step greedy decoder loop (EOS disabled, so every variant does the same work), timed in shuffled
rounds; a second build of the base runs in every round, so the folded/base ratio can be read
against the run's own noise.

Weights are random: cost does not depend on their values. Both frameworks use Adafactor with a
fixed learning rate and dropout 0.1. Outputs: a Markdown table (stdout and OUT.md), OUT.json and a
bar chart OUT.png. Needs no TensorFlow, so it runs on accelerator machines that lack it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

TRAIN_METHODS = [
  ("ft", None),
  ("lora", 4),
  ("lora", 16),
  ("pt", None),
  ("adalink", 4),
  ("adalink", 64),
]
INFER_VARIANTS = ["base", "adalink_module", "adalink_folded", "lora_unmerged", "lora_merged", "pt"]
# Dense bf16 peak FLOP/s by device kind, as published by the vendor (no sparsity).
PEAK_FLOPS = {
  "H100": 989.4e12,
  "H200": 989.4e12,
  "A100": 312e12,
  "TPU v4": 275e12,
  "TPU v5e": 197e12,
  "TPU v5p": 459e12,
}


def label(method, rank):
  return {"ft": "FT", "lora": "LoRA", "pt": "PT", "adalink": "AdaLink"}[method] + (
    f" r={rank}" if rank else (" 64 tok" if method == "pt" else "")
  )


def _proc_status(field: str):
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return None


def reset_peak_rss():
  """Starts the process's peak-RSS counter afresh at its current RSS (Linux; a no-op elsewhere).

  Each measurement runs in a child forked from a server that has only imported the framework, so
  the peak it reports covers that framework's imports plus this one measurement, as a fresh
  process would, without paying the imports again for every method.
  """
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass


def peak_rss_bytes() -> int:
  hwm = _proc_status("VmHWM")
  return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn, n: int, warmup: int, sync):
  for _ in range(warmup):
    sync(fn())
  times = []
  for _ in range(n):
    t = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - t)
  return statistics.median(times), times


def interleaved(fns: dict, n: int, warmup: int, sync) -> dict:
  """Times every function once per round, in a shuffled order, round after round, so slow drifts
  of the machine (frequency, other processes, allocator state) fall on all of them alike.
  -> name: times."""
  times = {name: [] for name in fns}
  order = list(fns)
  shuffle = random.Random(0).shuffle
  for r in range(warmup + n):
    shuffle(order)  # so no variant always follows the same neighbour
    for name in order:
      fn = fns[name]
      t = time.perf_counter()
      sync(fn())
      if r >= warmup:
        times[name].append(time.perf_counter() - t)
  return times


# --------------------------------------------------------------------------- JAX (this codebase)


def jax_method_cfg(method, rank, n_prompts):
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
  import flax.linen as nn
  import jax
  import numpy as np
  from adalink.peft import methods

  if isinstance(model, methods.PeftT5):
    abstract = nn.unbox(methods.abstract_variables(model))
  else:  # the bare T5
    from adalink.models import t5

    abstract = {
      "params": nn.unbox(
        jax.eval_shape(lambda: t5.init_params(model.config, jax.random.PRNGKey(0)))
      )
    }
  rng = np.random.default_rng(seed)

  def fill(x):
    if np.issubdtype(x.dtype, np.floating) or x.dtype == jax.numpy.bfloat16:
      return jax.numpy.asarray((0.02 * rng.standard_normal(x.shape, np.float32)).astype(x.dtype))
    return jax.numpy.zeros(x.shape, x.dtype)

  out = {}
  for col, tree in abstract.items():
    out[col] = (
      base_params
      if col == "params" and base_params is not None
      else jax.tree_util.tree_map(fill, tree)
    )
  return out


def jax_train_step(args, method, rank):
  """The benchmark's compiled train step for one method: -> dict with `run_one` (one step,
  returns the loss), the compile time, and the trainable/optimiser state for counting."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from adalink.models import t5
  from adalink.peft import methods
  from adalink.train import step as step_lib

  cfg = t5.get_config(args.size, dtype=args.dtype, dropout_rate=0.1)
  spec = methods.spec_from_config(jax_method_cfg(method, rank, args.prompts), cfg.d_model)
  model = methods.build_model(cfg, spec)
  variables = random_variables(model, 0)
  trainable, frozen = methods.split_variables(spec, variables)
  tx = optax.adafactor(1e-3, multiply_by_parameter_scale=False)
  opt_state = tx.init(trainable)
  rs = np.random.RandomState(0)
  batch = {
    "encoder_input_tokens": rs.randint(2, cfg.vocab_size, (args.batch, args.input_len)),
    "decoder_target_tokens": rs.randint(2, cfg.vocab_size, (args.batch, args.target_len)),
  }
  batch["decoder_input_tokens"] = np.concatenate(
    [np.zeros((args.batch, 1), np.int64), batch["decoder_target_tokens"][:, :-1]], 1
  )
  batch = {k: jnp.asarray(v, jnp.int32) for k, v in batch.items()}
  batch["decoder_loss_weights"] = jnp.ones((args.batch, args.target_len), jnp.float32)
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


def jax_train(args, method, rank):
  import jax
  from adalink.peft import methods

  built = jax_train_step(args, method, rank)
  median, times = timed(built["run_one"], args.steps, args.warmup, lambda x: x.block_until_ready())
  dev = jax.devices()[0]
  stats = dev.memory_stats() if dev.platform != "cpu" else None
  peak = stats["peak_bytes_in_use"] if stats and "peak_bytes_in_use" in stats else peak_rss_bytes()
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


def infer_order(base_repeats: int):
  """The variants in the order each round times them; the base appears `base_repeats` times
  (as base, base#2, ...) so its spread is the run's own noise."""
  return ["base"] + INFER_VARIANTS[1:] + [f"base#{i}" for i in range(2, base_repeats + 1)]


def infer_summary(times: dict) -> dict:
  return {
    name: {
      "encode_s": statistics.median(t["encode"]) if t["encode"] else None,
      "decode8_s": statistics.median(t["decode8"]),
      "encode_times": t["encode"],
      "decode8_times": t["decode8"],
    }
    for name, t in times.items()
  }


def jax_infer(args):
  import jax
  import jax.numpy as jnp
  import numpy as np
  from adalink.models import t5
  from adalink.peft import adalink as adalink_lib
  from adalink.peft import lora as lora_lib
  from adalink.peft import methods
  from adalink.train import decoding

  cfg = t5.get_config(args.size, dtype=args.dtype, dropout_rate=0.0)
  base = random_variables(t5.T5(cfg), 0)["params"]
  rs = np.random.RandomState(0)
  tokens = jnp.asarray(rs.randint(2, cfg.vocab_size, (args.batch, args.input_len)), jnp.int32)

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
  _, m, v = peft({"name": "pt", "num_prompts": args.prompts}, 3)
  variants["pt"] = (m, v)

  encode, decode = {}, {}
  for name in infer_order(args.base_repeats):
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
  enc_t = interleaved(encode, args.steps, args.warmup, sync)
  dec_t = interleaved(decode, args.steps, args.warmup, sync)
  return infer_summary({n: {"encode": enc_t[n], "decode8": dec_t[n]} for n in encode})


# --------------------------------------------------------------------------- PyTorch reference


def torch_model(args):
  import torch
  import transformers
  from adalink.models import t5

  cfg = t5.get_config(args.size)
  hf_cfg = transformers.T5Config(
    vocab_size=cfg.vocab_size,
    d_model=cfg.d_model,
    d_kv=cfg.d_kv,
    d_ff=cfg.d_ff,
    num_layers=cfg.num_encoder_layers,
    num_decoder_layers=cfg.num_decoder_layers,
    num_heads=cfg.num_heads,
    dropout_rate=0.1,
    feed_forward_proj="gated-gelu" if len(cfg.mlp_activations) == 2 else "relu",
    tie_word_embeddings=cfg.tie_word_embeddings,
    decoder_start_token_id=0,
    pad_token_id=0,
    eos_token_id=1,
  )
  torch.manual_seed(0)
  model = transformers.T5ForConditionalGeneration(hf_cfg)
  if not cfg.tie_word_embeddings:
    # transformers 5 always shares `shared.weight` as the head when it builds a T5 from a config;
    # v1.1 / FLAN-T5 (the sizes here) have their own head and no output scaling.
    model.config.scale_decoder_outputs = False
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.shared.weight) * 0.02)
  return cfg, model


def torch_adalink(model, rank, fold=False):
  """AdaLink for transformers' T5: the encoder's input embedding becomes E + (E W_down) W_up."""
  import torch

  class AdaLinkEmbedding(torch.nn.Module):
    def __init__(self, table, rank):
      super().__init__()
      self.table = table
      d = table.embedding_dim
      self.down = torch.nn.Parameter(torch.randn(d, rank) * d**-0.5)
      self.up = torch.nn.Parameter(torch.randn(rank, d) * 0.02)
      self.dropout = torch.nn.Dropout(0.1)

    def forward(self, ids):
      e = self.table(ids)
      return e + self.dropout(e @ self.down) @ self.up

  ad = AdaLinkEmbedding(model.shared, rank)
  if fold:
    with torch.no_grad():
      w = model.shared.weight
      table = torch.nn.Embedding.from_pretrained(w + (w @ ad.down) @ ad.up, freeze=True)
    model.encoder.embed_tokens = table
  else:
    model.encoder.embed_tokens = ad
  return model


def torch_peft(model, method, rank, n_prompts):
  import peft

  for p in model.parameters():
    p.requires_grad_(method == "ft")
  if method == "lora":
    config = peft.LoraConfig(
      r=rank,
      lora_alpha=rank,
      lora_dropout=0.0,
      target_modules=r".*encoder.*\.(q|k|v|o|wi_0|wi_1|wo)$",
    )
    return peft.get_peft_model(model, config)
  if method == "pt":
    # One prompt, in front of the encoder input (Lester et al., and this codebase's PT); peft's
    # seq2seq default would prepend a second set of prompts to the decoder input as well.
    config = peft.PromptTuningConfig(
      task_type="SEQ_2_SEQ_LM", num_virtual_tokens=n_prompts, num_transformer_submodules=1
    )
    return peft.get_peft_model(model, config)
  if method == "adalink":
    model = torch_adalink(model, rank)
    for p in model.encoder.embed_tokens.parameters():
      p.requires_grad_(False)
    model.encoder.embed_tokens.down.requires_grad_(True)
    model.encoder.embed_tokens.up.requires_grad_(True)
  return model


def torch_train(args, method, rank):
  import numpy as np
  import torch
  from transformers.optimization import Adafactor

  torch.set_num_threads(os.cpu_count())
  cfg, model = torch_model(args)
  device = "cuda" if torch.cuda.is_available() else "cpu"
  total = sum(p.numel() for p in model.parameters())
  model = torch_peft(model, method, rank, args.prompts).to(device)
  model.train()
  params = [p for p in model.parameters() if p.requires_grad]
  opt = Adafactor(params, lr=1e-3, scale_parameter=False, relative_step=False, warmup_init=False)
  rs = np.random.RandomState(0)
  ids = torch.tensor(rs.randint(2, cfg.vocab_size, (args.batch, args.input_len)), device=device)
  labels = torch.tensor(rs.randint(2, cfg.vocab_size, (args.batch, args.target_len)), device=device)
  amp = args.dtype == "bfloat16" and device == "cuda"

  def one():
    with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
      loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss

  sync = (lambda x: torch.cuda.synchronize()) if device == "cuda" else (lambda x: x.item())
  t = time.perf_counter()
  sync(one())  # eager: the first step pays allocation and kernel selection, reported as "compile"
  compile_s = time.perf_counter() - t
  if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
  median, times = timed(one, args.steps, args.warmup, sync)
  state_bytes = sum(
    v.numel() * v.element_size()
    for s in opt.state.values()
    for v in s.values()
    if torch.is_tensor(v)
  )
  peak = torch.cuda.max_memory_allocated() if device == "cuda" else peak_rss_bytes()
  return {
    "compile_s": compile_s,
    "step_s": median,
    "step_times": times,
    "trainable_params": sum(p.numel() for p in params),
    "total_params": total,
    "opt_state_bytes": int(state_bytes),
    "peak_bytes": int(peak),
    "peak_kind": "device" if device == "cuda" else "rss",
    "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
  }


def torch_infer(args):
  import numpy as np
  import torch

  torch.set_num_threads(os.cpu_count())
  device = "cuda" if torch.cuda.is_available() else "cpu"
  rs = np.random.RandomState(0)
  amp = args.dtype == "bfloat16" and device == "cuda"

  def build(name):
    cfg, model = torch_model(args)
    if name == "adalink_module":
      model = torch_adalink(model, 4)
    elif name == "adalink_folded":
      model = torch_adalink(model, 4, fold=True)
    elif name in ("lora_unmerged", "lora_merged"):
      model = torch_peft(model, "lora", 4, args.prompts)
      if name == "lora_merged":
        model = model.merge_and_unload()
    elif name == "pt":
      model = torch_peft(model, "pt", None, args.prompts)
    return cfg, model.to(device).eval()

  models = {name: build(name)[1] for name in INFER_VARIANTS}
  for name in infer_order(args.base_repeats):
    if "#" in name:  # a repeat of the base is a second copy of it (see jax_infer)
      models[name] = copy.deepcopy(models["base"])
  cfg = torch_model(args)[0]
  ids = torch.tensor(rs.randint(2, cfg.vocab_size, (args.batch, args.input_len)), device=device)
  mask = torch.ones_like(ids)

  from transformers.modeling_outputs import BaseModelOutput

  def enc(model):
    """-> (encoder output, its mask, the seq2seq model that decodes it)."""
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
      peft_cfg = getattr(model, "active_peft_config", None)
      if peft_cfg is not None and peft_cfg.is_prompt_learning:
        # peft prepends its prompts inside the wrapper's forward; the same wiring, spelled out
        # so that the encoder can be timed on its own as for every other variant.
        prompts = model.get_prompt(batch_size=ids.shape[0])
        x = model.base_model.get_input_embeddings()(ids)
        x = torch.cat([prompts.to(x.dtype), x], dim=1)
        m = torch.cat([torch.ones(prompts.shape[:2], dtype=mask.dtype, device=device), mask], 1)
        out = model.base_model.get_encoder()(inputs_embeds=x, attention_mask=m)
        return out.last_hidden_state, m, model.base_model
      out = model.get_encoder()(input_ids=ids, attention_mask=mask)
      return out.last_hidden_state, mask, model

  def dec(encoded, m, model):
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
      return model.generate(
        encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
        attention_mask=m,
        max_new_tokens=8,
        min_new_tokens=8,
        do_sample=False,
        num_beams=1,
      )

  order = infer_order(args.base_repeats)
  encode = {n: (lambda m=models[n]: enc(m)) for n in order}
  decode = {n: (lambda e=enc(models[n]): dec(*e)) for n in order}
  sync = (lambda x: torch.cuda.synchronize()) if device == "cuda" else (lambda x: None)
  enc_t = interleaved(encode, args.steps, args.warmup, sync)
  dec_t = interleaved(decode, args.steps, args.warmup, sync)
  return infer_summary({n: {"encode": enc_t[n], "decode8": dec_t[n]} for n in order})


def state_bytes_from_shapes(size: str, method_cfg: dict, optimizer: str) -> int:
  """Optimiser-state bytes for a method at a model size, from shapes only (nothing allocated)."""
  import jax
  import optax
  from adalink.models import t5
  from adalink.peft import methods

  cfg = t5.get_config(size)
  spec = methods.spec_from_config(method_cfg, cfg.d_model)
  import flax.linen as nn

  abstract = methods.abstract_variables(methods.build_model(cfg, spec))
  trainable, _ = methods.split_variables(spec, nn.unbox(abstract))
  tx = (
    optax.adafactor(1e-3, multiply_by_parameter_scale=False)
    if optimizer == "adafactor"
    else optax.adamw(1e-3)
  )
  state = jax.eval_shape(tx.init, trainable)
  return int(sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state)))


def state_table(size: str = "base") -> str:
  rows = [
    ("FT", {"name": "ft"}),
    ("LoRA r=4", {"name": "lora", "rank": 4}),
    ("AdaLink r=4", {"name": "adalink", "rank": 4}),
    ("AdaLink r=64", {"name": "adalink", "rank": 64}),
  ]
  got = {
    label: {opt: state_bytes_from_shapes(size, cfg, opt) for opt in ("adafactor", "adamw")}
    for label, cfg in rows
  }
  lines = [
    f"Optimiser state at T5 {size} dims, from shapes (share of FT's in brackets):",
    "",
    "| method | Adafactor (factored, as trained here) | AdamW |",
    "|---|---:|---:|",
  ]
  for label, _ in rows:
    cells = []
    for opt in ("adafactor", "adamw"):
      share = 100.0 * got[label][opt] / got["FT"][opt]
      cells.append(f"{fmt_bytes(got[label][opt])} ({share:.4f}%)")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


# --------------------------------------------------------------------------- orchestration


def worker(spec: dict):
  args = argparse.Namespace(**spec["args"])
  if spec["job"] == "train":
    fn = jax_train if spec["framework"] == "jax" else torch_train
    return fn(args, spec["method"], spec["rank"])
  return (jax_infer if spec["framework"] == "jax" else torch_infer)(args)


PRELOAD = {
  "jax": [
    "jax",
    "flax.linen",
    "optax",
    "numpy",
    "adalink.models.t5",
    "adalink.peft.methods",
    "adalink.peft.adalink",
    "adalink.peft.lora",
    "adalink.train.step",
    "adalink.train.decoding",
  ],
  "torch": [
    "torch",
    "numpy",
    "transformers",
    "transformers.models.t5.modeling_t5",
    "transformers.optimization",
    "peft",
  ],
}


def serve(framework: str):
  """Imports one framework, then runs each measurement read from stdin (a JSON spec per line) in
  a child forked from here, and writes its result back as one JSON line.

  A fresh child per measurement keeps each method's peak memory its own (what a new process
  would report) and starts it from a clean state; forking from a process that has done the
  imports, but started no runtime (no JAX backend, no torch thread pool), saves the seconds of
  importing that a new interpreter per measurement would pay.
  """
  import importlib
  import traceback

  for name in PRELOAD[framework]:
    importlib.import_module(name)
  for line in sys.stdin:
    spec = json.loads(line)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
      os.close(read_fd)
      try:
        reset_peak_rss()
        payload = json.dumps(worker(spec))
      except BaseException:  # report everything, the parent decides; never return into the loop
        payload = json.dumps({"error": traceback.format_exc()})
      with os.fdopen(write_fd, "w") as f:
        f.write(payload)
      os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
      payload = f.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
      payload = json.dumps(
        {"error": f"measurement process died (wait status {status}); out of memory?"}
      )
    print(payload, flush=True)


class Workers:
  """One `serve` process per framework, started when first needed."""

  def __init__(self):
    self.procs = {}

  def run(self, spec: dict) -> dict:
    fw = spec["framework"]
    if fw not in self.procs:
      self.procs[fw] = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", fw],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
      )
    proc = self.procs[fw]
    start = time.perf_counter()
    proc.stdin.write(json.dumps(spec) + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
      raise RuntimeError(
        f"benchmark server for {fw} exited (code {proc.wait()}) while running "
        f"{spec['job']} {spec.get('method')}"
      )
    out = json.loads(line)
    if "error" in out:
      raise RuntimeError(
        f"benchmark measurement {fw} {spec['job']} {spec.get('method')} "
        f"failed:\n{out['error'][-4000:]}"
      )
    out["worker_wall_s"] = time.perf_counter() - start  # build, compile and timing, no imports
    return out

  def close(self):
    for proc in self.procs.values():
      proc.stdin.close()
      proc.wait()


def fmt_bytes(n):
  for unit in ("B", "KiB", "MiB", "GiB"):
    if n < 1024 or unit == "GiB":
      return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1024


def round_times(m: dict, key: str) -> list:
  """Per-round times of one inference variant; `total` pairs the encode and the decoder loop of
  the same round."""
  if key == "total":
    return [a + b for a, b in zip(m["encode_times"], m["decode8_times"])]
  return list(m[f"{key}_times"])


def ratio_interval(num: list, den: list, n_boot: int = 2000, seed: int = 0):
  """median(num) / median(den), and its 5th and 95th percentiles when the rounds are resampled
  with replacement (paired: one resample picks the same rounds for both, which keeps the drift
  that both saw in a round out of the ratio). -> (ratio, lo, hi)."""
  import numpy as np

  num, den = np.asarray(num, float), np.asarray(den, float)
  idx = np.random.default_rng(seed).integers(0, len(num), (n_boot, len(num)))
  boot = np.median(num[idx], axis=1) / np.median(den[idx], axis=1)
  lo, hi = np.percentile(boot, [5, 95])
  return float(np.median(num) / np.median(den)), float(lo), float(hi)


def report(results, args) -> str:
  lines = []
  for size, r in results.items():
    dev = r["train"][0]["jax"]["device"]
    peak = next((v for k, v in PEAK_FLOPS.items() if k in dev), None)
    tokens = args.batch * (args.input_len + args.target_len)
    lines += [
      f"### T5 {size} dims, batch {args.batch}, input {args.input_len}, target "
      f"{args.target_len}, {args.dtype}, device: {dev}",
      "",
    ]
    if peak:
      lines += [
        f"MFU = 6 x total params x tokens per step / step time / {peak / 1e12:.1f} "
        f"TFLOP/s (dense bf16 peak of the device).",
        "",
      ]
    lines += [
      "| method | framework | trainable params | opt-state bytes | compile s | "
      "step ms (median) | examples/s | peak memory | MFU |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["train"]:
      for fw in ("jax", "torch"):
        m = row[fw]
        mfu = f"{100 * 6 * m['total_params'] * tokens / m['step_s'] / peak:.1f}%" if peak else "-"
        lines.append(
          f"| {row['label']} | {fw} | {m['trainable_params']:,} | "
          f"{fmt_bytes(m['opt_state_bytes'])} | {m['compile_s']:.1f} | "
          f"{1e3 * m['step_s']:.1f} | {args.batch / m['step_s']:.1f} | "
          f"{fmt_bytes(m['peak_bytes'])} ({m['peak_kind']}) | {mfu} |"
        )
    lines += [
      "",
      "JAX / PyTorch train-step time ratio per method: "
      + ", ".join(
        f"{row['label']} {row['jax']['step_s'] / row['torch']['step_s']:.2f}" for row in r["train"]
      ),
      "",
    ]
    ft = next(row for row in r["train"] if row["label"] == "FT")["jax"]["opt_state_bytes"]
    ada = [row for row in r["train"] if row["label"].startswith("AdaLink")]
    lines += [
      "AdaLink optimiser state as a share of FT's (JAX, factored Adafactor; AdamW in the "
      "T5-base table below): "
      + ", ".join(f"{row['label']} {100 * row['jax']['opt_state_bytes'] / ft:.4f}%" for row in ada),
      "",
    ]
    fws = [fw for fw in ("jax", "torch") if fw in r["infer"]]
    inf = r["infer"]
    names = [n for n in inf[fws[0]] if n != "worker_wall_s"]
    for fw in fws:  # end to end = encoder, then the 8-step decoder loop on its output
      for n in names:
        inf[fw][n]["total_s"] = statistics.median(round_times(inf[fw][n], "total"))
    lines += [
      f"Inference, medians of {args.steps} rounds; each round runs every variant once in "
      "a shuffled order. `encode`: the encoder forward; `loop`: the 8-step greedy decoder "
      "loop (KV cache, EOS disabled) on that output; `total`: the median over rounds of "
      "encode + loop. base#2 is a second build of the base (own weights, own compiled "
      "encoder): its difference from the base is the run's own noise.",
      "",
      "| variant | "
      + " | ".join(f"{fw} encode ms | {fw} loop ms | {fw} total ms" for fw in fws)
      + " |",
      "|---|" + "---:|---:|---:|" * len(fws),
    ]
    for name in names:
      cells = []
      for fw in fws:
        m = inf[fw][name]
        cells += [f"{1e3 * m[k]:.2f}" for k in ("encode_s", "decode8_s", "total_s")]
      lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    bases = [n for n in names if n.split("#")[0] == "base"]
    lines += [
      "Folded AdaLink against the base, read against the run's own noise: `base#2/base` "
      "is the same ratio between two builds of the identical base. Brackets: 90% "
      "intervals of each ratio of medians from a paired bootstrap over the rounds "
      "(2,000 resamples), so the interval of base#2/base is how far a ratio of two "
      "identical models moves by chance.",
      "",
    ]
    for fw in fws:
      for key in ("encode", "total"):
        per_round = {n: round_times(inf[fw][n], key) for n in names}
        series = [inf[fw][n][f"{key}_s"] for n in bases]
        spread = (max(series) - min(series)) / min(series)
        cell = lambda n: "{:.3f} [{:.3f}, {:.3f}]".format(
          *ratio_interval(per_round[n], per_round["base"])
        )
        folded, lo, _ = ratio_interval(per_round["adalink_folded"], per_round["base"])
        noise = f"base#2/base {cell(bases[1])}; " if len(bases) > 1 else ""
        # One-sided: the claim is that folding costs nothing, not that it is faster.
        verdict = (
          "not slower than the base beyond the noise"
          if lo <= 1
          else "slower than the base beyond the noise"
        )
        lines.append(
          f"- {fw} {key}: base medians {', '.join(f'{1e3 * x:.2f}' for x in series)} "
          f"ms (spread {100 * spread:.1f}%); {noise}folded/base "
          f"{cell('adalink_folded')}, {verdict}; module/base {cell('adalink_module')}"
        )
    lines.append("")
  return "\n".join(lines)


def chart(results, path):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np

  for size, r in results.items():
    labels = [row["label"] for row in r["train"]]
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key, scale, title in (
      (axes[0], "step_s", 1e3, "train step (ms)"),
      (axes[1], "peak_bytes", 2**-20, "peak memory (MiB)"),
    ):
      for i, fw in enumerate(("jax", "torch")):
        ax.bar(
          x + (i - 0.5) * 0.38,
          [row[fw][key] * scale for row in r["train"]],
          0.38,
          label="this codebase (JAX)" if fw == "jax" else "transformers+peft",
        )
      ax.set_xticks(x)
      ax.set_xticklabels(labels, rotation=30, ha="right")
      ax.set_title(f"T5 {size}: {title}")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path.replace(".png", f"_{size}.png") if len(results) > 1 else path, dpi=110)


def main(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument("--sizes", nargs="+", default=["small"])
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--input-len", type=int, default=128)
  p.add_argument("--target-len", type=int, default=8)
  p.add_argument("--prompts", type=int, default=64)
  p.add_argument("--steps", type=int, default=20, help="timed steps (the median is reported)")
  p.add_argument("--warmup", type=int, default=1)
  p.add_argument(
    "--base-repeats",
    type=int,
    default=2,
    help="times the base runs in each inference round (its spread is the noise)",
  )
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  p.add_argument("--frameworks", nargs="+", default=["jax", "torch"])
  p.add_argument("--out", default="benchmark", help="output prefix for .md, .json and .png")
  p.add_argument(
    "--cache",
    default=None,
    help="JSON file of finished measurements: read to skip them, written after each",
  )
  p.add_argument(
    "--jobs",
    nargs="+",
    default=["train", "infer"],
    choices=["train", "infer"],
    help="which measurements to run now (the report needs both, from here or --cache)",
  )
  p.add_argument("--serve", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.serve:
    serve(args.serve)
    return
  run_start = time.perf_counter()
  workers = Workers()
  if args.steps < 20:
    print(f"note: --steps {args.steps} < 20; medians are noisier", file=sys.stderr)
  cache = {}
  if args.cache:
    os.makedirs(os.path.dirname(os.path.abspath(args.cache)), exist_ok=True)
  if args.cache and os.path.exists(args.cache):
    with open(args.cache) as f:
      cache = json.load(f)

  fresh = set()

  def measured(key, spec):
    if key not in cache:
      if spec["job"] not in args.jobs:
        raise SystemExit(f"no cached result for {key} and --jobs excludes {spec['job']!r}")
      cache[key] = workers.run(spec)
      fresh.add(key)
      if args.cache:  # after every measurement, so an interrupted run keeps what it finished
        with open(args.cache, "w") as f:
          json.dump(cache, f)
    return cache[key]

  results = {}
  for size in args.sizes:
    common = {k: v for k, v in vars(args).items() if k not in ("serve", "sizes")}
    common["size"] = size
    train = []
    from adalink.models import t5

    width = t5.get_config(size).d_model
    for method, rank in TRAIN_METHODS:
      if rank is not None and rank > width:
        print(f"[{size}] skipping {label(method, rank)}: rank > d_model {width}", file=sys.stderr)
        continue
      row = {"label": label(method, rank)}
      for fw in args.frameworks:
        print(f"[{size}] train {row['label']} ({fw})", file=sys.stderr, flush=True)
        row[fw] = measured(
          f"{size}/train/{fw}/{method}/{rank}",
          {"job": "train", "framework": fw, "method": method, "rank": rank, "args": common},
        )
      train.append(row)
    infer = {}
    for fw in args.frameworks:
      print(f"[{size}] inference ({fw})", file=sys.stderr, flush=True)
      infer[fw] = measured(f"{size}/infer/{fw}", {"job": "infer", "framework": fw, "args": common})
    results[size] = {"train": train, "infer": infer}
  if set(args.jobs) != {"train", "infer"} and not all(
    f"{size}/infer/{fw}" in cache for size in args.sizes for fw in args.frameworks
  ):
    print(
      f"measurements cached in {args.cache}; run again with --jobs infer for the report",
      file=sys.stderr,
    )
    return
  workers.close()
  text = (
    report(results, args)
    + "\n"
    + state_table("base")
    + "\n\n"
    + f"Whole run: {time.perf_counter() - run_start:.0f} s of wall time "
    + f"(measurements from the cache not included: {sum(1 for k in cache) - len(fresh)} "
    + "cached).\n"
  )
  print(text)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out + ".md", "w") as f:
    f.write(text + "\n")
  with open(args.out + ".json", "w") as f:
    json.dump({"args": vars(args), "results": results}, f, indent=1)
  chart(results, args.out + ".png")


if __name__ == "__main__":
  main()
