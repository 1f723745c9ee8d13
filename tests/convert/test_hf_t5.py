"""Hugging Face T5 reader/writer against transformers (torch, CPU, float32) on random tiny models."""

import copy
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="parity tests compare against torch transformers")
pytest.importorskip("transformers", reason="parity tests compare against transformers")

import jax.numpy as jnp  # noqa: E402
import transformers  # noqa: E402

from tests.convert import hf_reference as ref  # noqa: E402
from adalink.convert import hf_t5, safetensors_io, tree  # noqa: E402
from adalink.models import attention, t5  # noqa: E402

TOL = 1e-4
# Three output-layer conventions: v1.1 (gated GELU, own head, no scaling), original T5 (ReLU,
# head tied to the table and scaled), and transformers 5's untied config saved without a head
# (the table reused unscaled), the last with more encoder than decoder layers.
CASES = {
  "v11_gated_untied": dict(
    seed=0, vocab=160, feed_forward_proj="gated-gelu", tie=False, separate_head=True
  ),
  "orig_relu_tied": dict(
    seed=1, vocab=128, feed_forward_proj="relu", tie=True, separate_head=False
  ),
  "gated_3enc_1dec_shared_head": dict(
    seed=2,
    vocab=96,
    feed_forward_proj="gated-gelu",
    tie=False,
    separate_head=False,
    num_layers=3,
    num_decoder_layers=1,
  ),
}
ENC_LENGTHS, ENC_LEN = [40, 33, 17, 5], 40  # past max_distance 20: the far buckets are used
DEC_LENGTHS, DEC_LEN = [24, 20, 9, 1], 24


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
  spec = CASES[request.param]
  model = ref.hf_model(**spec)
  out = tmp_path_factory.mktemp(request.param)
  model.save_pretrained(out / "f32")
  config, params = hf_t5.load_hf_t5(str(out / "f32"))
  rng = np.random.RandomState(spec["seed"])
  enc = ref.padded_batch(rng, ENC_LENGTHS, ENC_LEN, spec["vocab"])
  targets = ref.padded_batch(rng, DEC_LENGTHS, DEC_LEN, spec["vocab"])
  return dict(
    name=request.param,
    spec=spec,
    model=model,
    dir=out,
    config=config,
    params=params,
    enc=enc,
    targets=targets,
    hf=ref.hf_logits(model, enc, targets),
  )


def test_config_read_from_config_json(case):
  spec, cfg = case["spec"], case["config"]
  assert (cfg.vocab_size, cfg.d_model, cfg.num_heads, cfg.d_kv, cfg.d_ff) == (
    spec["vocab"],
    32,
    4,
    6,
    64,
  )
  assert cfg.num_encoder_layers == spec.get("num_layers", 2)
  assert cfg.num_decoder_layers == spec.get("num_decoder_layers", 2)
  assert cfg.relative_attention_max_distance == 20
  gated = spec["feed_forward_proj"] == "gated-gelu"
  assert cfg.mlp_activations == (("gelu", "linear") if gated else ("relu",))
  assert cfg.tie_word_embeddings == spec["tie"]
  assert ("logits_dense" in case["params"]["decoder"]) == (not spec["tie"])


def test_logits_match_transformers(case):
  ours = ref.flax_logits(case["config"], case["params"], case["enc"], case["targets"])
  diff = ref.max_diff_at_targets(ours, case["hf"], case["targets"])
  print(
    f"\n{case['name']}: f32 max |logit diff| = {diff:.2e} "
    f"(logit scale {np.abs(case['hf']).max():.2f})"
  )
  assert diff <= TOL


def test_bfloat16_activations_close(case):
  """bfloat16 activations (parameters stay float32): within 2% of the largest logit."""
  cfg = case["config"].replace(dtype="bfloat16")
  ours = ref.flax_logits(cfg, case["params"], case["enc"], case["targets"])
  scale = float(np.abs(case["hf"]).max())
  diff = ref.max_diff_at_targets(ours, case["hf"], case["targets"])
  print(f"\n{case['name']}: bf16 max |logit diff| = {diff:.3f} = {diff / scale:.4f} x max |logit|")
  assert diff <= 0.02 * scale


def test_sharded_safetensors_load_the_same(case):
  case["model"].save_pretrained(case["dir"] / "sharded", max_shard_size="20KB")
  names = os.listdir(case["dir"] / "sharded")
  assert hf_t5.INDEX_FILE in names and sum(n.endswith(".safetensors") for n in names) > 3
  config, params = hf_t5.load_hf_t5(str(case["dir"] / "sharded"))
  assert config == case["config"]
  a, b = tree.flatten(case["params"]), tree.flatten(params)
  assert sorted(a) == sorted(b)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_bfloat16_stored_weights_load(case):
  model = copy.deepcopy(case["model"]).to(torch.bfloat16)
  model.save_pretrained(case["dir"] / "bf16")
  f = safetensors_io.SafetensorsFile(str(case["dir"] / "bf16" / hf_t5.WEIGHTS_FILE))
  assert {f.dtype(k).name for k in f.keys()} == {"bfloat16"}
  _, params = hf_t5.load_hf_t5(str(case["dir"] / "bf16"))
  a, b = tree.flatten(case["params"]), tree.flatten(params)
  for k in a:
    assert b[k].dtype == np.float32
    # Exactly the float32 weights rounded to bfloat16 (round to nearest even, as torch does).
    np.testing.assert_array_equal(
      b[k], np.asarray(jnp.asarray(a[k]).astype(jnp.bfloat16), np.float32), err_msg=k
    )


def test_writer_output_loads_in_transformers(case):
  out = case["dir"] / "written"
  hf_t5.save_hf_t5(case["config"], case["params"], str(out))
  model = transformers.T5ForConditionalGeneration.from_pretrained(
    str(out), attn_implementation="eager"
  ).eval()
  diff = ref.max_diff_at_targets(
    ref.hf_logits(model, case["enc"], case["targets"]), case["hf"], case["targets"]
  )
  print(f"\n{case['name']}: reloaded-by-transformers max |logit diff| = {diff:.2e}")
  assert diff <= 1e-6
  config, params = hf_t5.load_hf_t5(str(out))
  assert config == case["config"]
  for k, v in tree.flatten(params).items():
    np.testing.assert_array_equal(v, tree.flatten(case["params"])[k], err_msg=k)


def test_writer_shards_and_bfloat16(case, tmp_path):
  hf_t5.save_hf_t5(
    case["config"], case["params"], str(tmp_path), shard_size=8_000, dtype="bfloat16"
  )
  index = json.loads((tmp_path / hf_t5.INDEX_FILE).read_text())
  shards = set(index["weight_map"].values())
  assert len(shards) > 3 and all((tmp_path / s).is_file() for s in shards)
  for s in shards:
    assert os.path.getsize(tmp_path / s) <= 8_000 + 4096  # data plus header
  config, params = hf_t5.load_hf_t5(str(tmp_path))
  assert config == case["config"]
  for k, v in tree.flatten(case["params"]).items():
    np.testing.assert_array_equal(
      tree.flatten(params)[k], np.asarray(jnp.asarray(v).astype(jnp.bfloat16), np.float32)
    )
  model = transformers.T5ForConditionalGeneration.from_pretrained(str(tmp_path))
  assert model.shared.weight.dtype == torch.bfloat16


@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (32, 20), (64, 256), (16, 12)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_bucket_matches_transformers(num_buckets, max_distance, bidirectional):
  rel = np.arange(-300, 301)
  theirs = transformers.models.t5.modeling_t5.T5Attention._relative_position_bucket(
    torch.tensor(rel),
    bidirectional=bidirectional,
    num_buckets=num_buckets,
    max_distance=max_distance,
  ).numpy()
  ours = np.asarray(
    attention.relative_position_bucket(jnp.asarray(rel), bidirectional, num_buckets, max_distance)
  )
  np.testing.assert_array_equal(ours, theirs)
  assert len(np.unique(theirs)) > num_buckets // 4  # the range reaches the far buckets


def test_greedy_decoding_matches_generate(tmp_path):
  decoding = pytest.importorskip(
    "adalink.train.decoding", reason="adalink/train/decoding.py is not there yet"
  )
  spec = dict(CASES["v11_gated_untied"], seed=5)
  model = ref.hf_model(**spec)
  with torch.no_grad():
    # EOS's output row made a louder copy of token 7's, so EOS wins where token 7's logit is
    # large: some rows stop early (3 of 8 with this seed) and the others run to the limit.
    model.lm_head.weight[1] = model.lm_head.weight[7] * 1.5
  model.save_pretrained(tmp_path)
  config, params = hf_t5.load_hf_t5(str(tmp_path))
  rng = np.random.RandomState(11)
  enc = ref.padded_batch(rng, [12, 9, 30, 3, 12, 7, 21, 1], 30, spec["vocab"])
  steps = 10
  with torch.no_grad():
    theirs = model.generate(
      input_ids=torch.tensor(enc, dtype=torch.long),
      attention_mask=torch.tensor(enc != 0, dtype=torch.long),
      do_sample=False,
      num_beams=1,
      max_new_tokens=steps,
      decoder_start_token_id=0,
      eos_token_id=1,
      pad_token_id=0,
    ).numpy()
  theirs = theirs[:, 1:]  # drop the start token
  theirs = np.pad(theirs, ((0, 0), (0, steps - theirs.shape[1])))  # generate stops when all end
  ours = np.asarray(
    decoding.greedy_decode(t5.T5(config), params, jnp.asarray(enc), steps, eos_id=1)
  )
  ended = (theirs == 1).any(axis=1)
  print(f"\ngreedy: {int(ended.sum())} of {len(enc)} rows hit EOS within {steps} steps")
  assert ended.any() and not ended.all()  # both ways a row can finish are exercised
  np.testing.assert_array_equal(ours, theirs)
