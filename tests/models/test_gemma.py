"""Gemma 1 / Gemma 2 in Flax against `transformers` on random models it builds itself.

Each case writes a random GemmaForCausalLM / Gemma2ForCausalLM with `save_pretrained` (one file,
shards, or bfloat16), reads the directory with `adalink.convert.hf_gemma`, and compares: logits of
every continuation split (f32, within 1e-4), greedy tokens against `generate`, beam scores
against a teacher-forced pass, and the refusals of a damaged directory.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="parity tests compare against torch transformers")
transformers = pytest.importorskip("transformers", reason="parity tests compare against it")

from adalink.convert import hf_gemma, safetensors_io  # noqa: E402
from adalink.models import gemma, gemma_config  # noqa: E402
from adalink.train import decoding  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

VOCAB = 101
# name -> (version, config kwargs, how it is saved)
CASES = {
  "gemma1_mqa": (1, dict(num_attention_heads=4, num_key_value_heads=1, head_dim=8), "single"),
  "gemma1_gqa_sharded": (
    1,
    dict(num_attention_heads=6, num_key_value_heads=2, head_dim=6, rope_theta=500.0),
    "sharded",
  ),
  "gemma2_window_caps": (
    2,
    dict(
      num_attention_heads=4,
      num_key_value_heads=2,
      head_dim=8,
      sliding_window=4,
      query_pre_attn_scalar=12,
      attn_logit_softcapping=5.0,
      final_logit_softcapping=3.0,
    ),
    "single",
  ),
  "gemma2_mqa_bf16": (
    2,
    dict(num_attention_heads=4, num_key_value_heads=1, head_dim=8, sliding_window=3),
    "bf16",
  ),
}


def hf_gemma_model(version: int, seed: int, **kw):
  """A random float32 Gemma causal LM; norm scales randomised too (they start at zero)."""
  torch.manual_seed(seed)
  common = dict(
    vocab_size=VOCAB, hidden_size=32, intermediate_size=40, num_hidden_layers=3, pad_token_id=0
  )
  if version == 1:
    model = transformers.GemmaForCausalLM(transformers.GemmaConfig(**common, **kw))
  else:
    model = transformers.Gemma2ForCausalLM(transformers.Gemma2Config(**common, **kw))
  model.eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(torch.randn_like(p) * 0.1)
  return model


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
  version, kw, how = CASES[request.param]
  model = hf_gemma_model(version, seed=len(request.param), **kw)
  directory = tmp_path_factory.mktemp(request.param)
  if how == "bf16":
    model.to(torch.bfloat16).save_pretrained(directory)
    # The reference runs the rounded weights in float32, read back as a user would (casting the
    # model itself would also round its rotary frequencies).
    model = type(model).from_pretrained(directory, dtype=torch.float32).eval()
  elif how == "sharded":
    model.save_pretrained(directory, max_shard_size="20KB")
  else:
    model.save_pretrained(directory)
  config, params = hf_gemma.load_hf_gemma(str(directory))
  return request.param, model, str(directory), config, params


def _tokens(seed: int, shape):
  return np.random.RandomState(seed).randint(3, VOCAB, size=shape).astype(np.int32)


def test_saved_layout_is_what_the_case_says(case):
  name, _, directory, config, _ = case
  files = os.listdir(directory)
  if name.endswith("sharded"):
    assert "model.safetensors.index.json" in files
    assert len([f for f in files if f.endswith(".safetensors")]) > 1
  if name.endswith("bf16"):
    f = safetensors_io.SafetensorsFile(os.path.join(directory, "model.safetensors"))
    assert {str(f.get(n).dtype) for n in f.keys()} == {"bfloat16"}
  assert config.version == (2 if name.startswith("gemma2") else 1)


@pytest.mark.parametrize("split", [1, 9])
def test_logits_match_transformers_at_every_split(case, split):
  """Prefix of `split` tokens, continuation of the rest: the continuation's logits equal the
  reference's at the same positions (slot 0 predicts the first continuation token)."""
  _, model, _, config, params = case
  ids = _tokens(1, (2, 12))
  with torch.no_grad():
    ref = model(torch.tensor(ids, dtype=torch.long)).logits.numpy()
  start = np.zeros((2, 1), np.int32)
  out = gemma.Gemma(config).apply(
    {"params": params},
    jnp.asarray(ids[:, :split]),
    jnp.asarray(np.concatenate([start, ids[:, split:]], 1)),
  )
  np.testing.assert_allclose(np.asarray(out), ref[:, split - 1 :], atol=1e-4, rtol=0)


def test_padded_prefixes_of_different_lengths_match_each_alone(case):
  _, model, _, config, params = case
  ids = _tokens(2, (2, 10))
  lengths = [7, 3]
  prefix = np.zeros((2, 7), np.int32)
  for i, n in enumerate(lengths):
    prefix[i, :n] = ids[i, :n]
  suffix = np.concatenate([np.zeros((2, 1), np.int32), ids[:, 7:]], 1)
  out = np.asarray(gemma.Gemma(config).apply({"params": params}, prefix, suffix))
  for i, n in enumerate(lengths):
    row = np.concatenate([ids[i, :n], ids[i, 7:]])[None]
    with torch.no_grad():
      ref = model(torch.tensor(row, dtype=torch.long)).logits.numpy()[0, n - 1 :]
    np.testing.assert_allclose(out[i], ref, atol=1e-4, rtol=0)


def test_greedy_tokens_equal_generate(case):
  _, model, _, config, params = case
  ids = _tokens(3, (2, 8))
  prompts = [ids[0, :8], ids[1, :5]]
  padded = np.zeros((2, 8), np.int32)
  for i, p in enumerate(prompts):
    padded[i, : len(p)] = p
  ours = np.asarray(
    decoding.greedy_decode(gemma.Gemma(config), params, padded, 10, eos_id=config.eos_token_id)
  )
  for i, p in enumerate(prompts):
    with torch.no_grad():
      ref = model.generate(
        torch.tensor(p[None], dtype=torch.long),
        max_new_tokens=10,
        do_sample=False,
        eos_token_id=config.eos_token_id,
        pad_token_id=0,
      )[0, len(p) :].tolist()
    ref = np.asarray(ref + [0] * (10 - len(ref)))[None]
    eos = config.eos_token_id
    assert decoding.trim_after_eos(ours[i : i + 1], eos) == decoding.trim_after_eos(ref, eos)


def test_beam_scores_equal_a_teacher_forced_pass(case):
  """The cache under beam reordering: each returned beam's score is its own log-probability."""
  _, _, _, config, params = case
  model = gemma.Gemma(config)
  prompt = _tokens(4, (1, 6))
  seqs, scores = decoding.beam_search(
    model, params, prompt, 5, beam_size=3, alpha=0.0, eos_id=-1, return_all=True
  )
  seqs = np.asarray(seqs)[0]
  for k in range(3):
    inputs = np.concatenate([[0], seqs[k, :-1]])[None].astype(np.int32)
    logp = jax.nn.log_softmax(model.apply({"params": params}, prompt, inputs))[0]
    total = float(jnp.sum(logp[jnp.arange(5), seqs[k]]))
    assert abs(total - float(scores[0, k])) < 1e-4


def test_a_damaged_directory_is_refused_by_tensor_name(case, tmp_path):
  name, _, directory, config, params = case
  if name.endswith("sharded"):
    pytest.skip("the single-file cases cover the rewrite below")
  f = safetensors_io.load_file(os.path.join(directory, "model.safetensors"))
  cfg = json.load(open(os.path.join(directory, "config.json")))

  def write(tensors, where):
    os.makedirs(where)
    safetensors_io.save_file(tensors, os.path.join(where, "model.safetensors"))
    json.dump(cfg, open(os.path.join(where, "config.json"), "w"))
    return str(where)

  q = "model.layers.1.self_attn.q_proj.weight"
  missing = {k: v for k, v in f.items() if k != q}
  with pytest.raises(ValueError, match=f"missing '{q}'"):
    hf_gemma.load_hf_gemma(write(missing, tmp_path / "missing"))
  bad = dict(f, **{q: f[q][:-1]})
  with pytest.raises(ValueError, match=rf"'{q}' has shape"):
    hf_gemma.load_hf_gemma(write(bad, tmp_path / "shape"))
  extra = dict(f, **{"model.layers.1.self_attn.q_norm.weight": f["model.norm.weight"]})
  with pytest.raises(ValueError, match="unexpected.*q_norm"):
    hf_gemma.load_hf_gemma(write(extra, tmp_path / "extra"))
  with pytest.raises(ValueError, match="num_kv_heads: file"):
    hf_gemma.load_hf_gemma(directory, config.replace(num_kv_heads=config.num_heads))


def test_other_models_and_bad_configs_are_refused():
  with pytest.raises(ValueError, match="model_type 't5' is not a Gemma decoder"):
    hf_gemma.config_from_hf({"model_type": "t5"})
  with pytest.raises(ValueError, match="num_heads .6. must be a multiple of num_kv_heads .4."):
    gemma_config.get_config("tiny", num_heads=6, num_kv_heads=4)
  with pytest.raises(ValueError, match="'local' layers but no sliding_window"):
    gemma_config.get_config("tiny2", sliding_window=None)
