"""The PyTorch reference: transformers' T5 with the same dimensions (and its own output layer, as
T5 1.1 has), peft's LoRA and prompt tuning, and AdaLink written as a small input-embedding module.
torch, transformers, peft and this codebase's model sizes (JAX) are imported inside the functions,
so the PyTorch measurement server preloads only the PyTorch side."""

from __future__ import annotations

import copy
import os
import time
from typing import Any, Dict, Optional

import numpy as np

from adalink.bench import timing
from adalink.bench.options import INFER_VARIANTS, BenchmarkOptions, infer_order


def torch_model(options: BenchmarkOptions):
  """(T5Config, transformers T5ForConditionalGeneration) with the dims of `options.size`."""
  import torch
  import transformers

  from adalink.models import t5  # here, not above: the PyTorch server need not import JAX

  cfg = t5.get_config(options.size)
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


def torch_adalink(model, rank: int, fold: bool = False):
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


def torch_peft(model, method: str, rank: Optional[int], n_prompts: int):
  """`model` with only method `method`'s weights trainable."""
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


def torch_train(options: BenchmarkOptions, method: str, rank: Optional[int]) -> Dict[str, Any]:
  import torch
  from transformers.optimization import Adafactor

  o = options
  torch.set_num_threads(os.cpu_count())
  cfg, model = torch_model(o)
  device = "cuda" if torch.cuda.is_available() else "cpu"
  total = sum(p.numel() for p in model.parameters())
  model = torch_peft(model, method, rank, o.prompts).to(device)
  model.train()
  params = [p for p in model.parameters() if p.requires_grad]
  opt = Adafactor(params, lr=1e-3, scale_parameter=False, relative_step=False, warmup_init=False)
  rs = np.random.RandomState(0)
  ids = torch.tensor(rs.randint(2, cfg.vocab_size, (o.batch, o.input_len)), device=device)
  labels = torch.tensor(rs.randint(2, cfg.vocab_size, (o.batch, o.target_len)), device=device)
  amp = o.dtype == "bfloat16" and device == "cuda"

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
  median, times = timing.timed(one, o.steps, o.warmup, sync)
  state_bytes = sum(
    v.numel() * v.element_size()
    for s in opt.state.values()
    for v in s.values()
    if torch.is_tensor(v)
  )
  peak = torch.cuda.max_memory_allocated() if device == "cuda" else timing.peak_rss_bytes()
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


def torch_infer(options: BenchmarkOptions) -> Dict[str, Any]:
  import torch
  from transformers.modeling_outputs import BaseModelOutput

  o = options
  torch.set_num_threads(os.cpu_count())
  device = "cuda" if torch.cuda.is_available() else "cpu"
  rs = np.random.RandomState(0)
  amp = o.dtype == "bfloat16" and device == "cuda"

  def build(name):
    cfg, model = torch_model(o)
    if name == "adalink_module":
      model = torch_adalink(model, 4)
    elif name == "adalink_folded":
      model = torch_adalink(model, 4, fold=True)
    elif name in ("lora_unmerged", "lora_merged"):
      model = torch_peft(model, "lora", 4, o.prompts)
      if name == "lora_merged":
        model = model.merge_and_unload()
    elif name == "pt":
      model = torch_peft(model, "pt", None, o.prompts)
    return cfg, model.to(device).eval()

  models = {name: build(name)[1] for name in INFER_VARIANTS}
  for name in infer_order(o.base_repeats):
    if "#" in name:  # a repeat of the base is a second copy of it (see jax_side.jax_infer)
      models[name] = copy.deepcopy(models["base"])
  cfg = torch_model(o)[0]
  ids = torch.tensor(rs.randint(2, cfg.vocab_size, (o.batch, o.input_len)), device=device)
  mask = torch.ones_like(ids)

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

  order = infer_order(o.base_repeats)
  encode = {n: (lambda m=models[n]: enc(m)) for n in order}
  decode = {n: (lambda e=enc(models[n]): dec(*e)) for n in order}
  sync = (lambda x: torch.cuda.synchronize()) if device == "cuda" else (lambda x: None)
  enc_t = timing.interleaved(encode, o.steps, o.warmup, sync)
  dec_t = timing.interleaved(decode, o.steps, o.warmup, sync)
  return timing.infer_summary({n: {"encode": enc_t[n], "decode8": dec_t[n]} for n in order})
