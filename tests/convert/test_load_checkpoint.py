"""Format detection and the errors a bad checkpoint gets (no torch needed)."""

import json
import os

import numpy as np
import pytest

from adalink import convert
from adalink.convert import hf_t5, safetensors_io, t5x, tree
from adalink.models import t5

CONFIG = t5.get_config("tiny", vocab_size=64, d_kv=6, num_encoder_layers=2, num_decoder_layers=1)
WEIGHTS = hf_t5.WEIGHTS_FILE


@pytest.fixture(scope="module")
def params():
  rng = np.random.RandomState(0)
  return tree.unflatten(
    {k: rng.randn(*shape).astype(np.float32) for k, shape in tree.expected_shapes(CONFIG).items()}
  )


@pytest.fixture
def hf_dir(params, tmp_path):
  hf_t5.save_hf_t5(CONFIG, params, str(tmp_path / "hf"))
  return tmp_path / "hf"


def _edit_weights(directory, fn):
  path = os.path.join(directory, WEIGHTS)
  tensors = safetensors_io.load_file(path)
  fn(tensors)
  safetensors_io.save_file(tensors, path, {"format": "pt"})


def _assert_same(a, b):
  fa, fb = tree.flatten(a), tree.flatten(b)
  assert sorted(fa) == sorted(fb)
  for k in fa:
    np.testing.assert_array_equal(np.asarray(fa[k]), fb[k], err_msg=k)


def test_detects_each_format(params, hf_dir, tmp_path):
  t5x.save_t5x(params, str(tmp_path / "single"), config=CONFIG)
  t5x.save_t5x_dir(params, str(tmp_path / "checkpoint_5"), config=CONFIG)
  cases = {
    hf_dir: "hf",
    hf_dir / WEIGHTS: "hf",
    tmp_path / "single": "t5x",
    tmp_path / "checkpoint_5": "t5x",
    tmp_path / "checkpoint_5" / "checkpoint": "t5x",
  }
  for path, fmt in cases.items():
    assert convert.detect_format(str(path)) == fmt, path
    config, loaded = convert.load_checkpoint(str(path))
    assert config == CONFIG, path
    _assert_same(params, loaded)


def test_unknown_and_ambiguous_directories(hf_dir, tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(
    ValueError,
    match=r"empty: not a checkpoint directory: looked for "
    r"'config.json' \(Hugging Face\) and 'checkpoint'",
  ):
    convert.load_checkpoint(str(tmp_path / "empty"))
  with pytest.raises(ValueError, match=r"path .*nowhere does not exist"):
    convert.load_checkpoint(str(tmp_path / "nowhere"))
  (hf_dir / "checkpoint").write_bytes(b"")
  with pytest.raises(ValueError, match="holds both a Hugging Face 'config.json' and a T5X"):
    convert.load_checkpoint(str(hf_dir))


def test_hf_missing_tensor_is_named(hf_dir):
  _edit_weights(hf_dir, lambda t: t.pop("encoder.block.1.layer.1.DenseReluDense.wo.weight"))
  with pytest.raises(
    ValueError,
    match=r"missing 'encoder.block.1.layer.1.DenseReluDense.wo.weight'"
    r" \(expected shape \(32, 64\)\)",
  ):
    convert.load_checkpoint(str(hf_dir))


def test_hf_misshaped_tensor_is_named(hf_dir):
  def shrink(t):
    t["decoder.block.0.layer.1.EncDecAttention.k.weight"] = np.zeros((24, 31), np.float32)

  _edit_weights(hf_dir, shrink)
  with pytest.raises(
    ValueError,
    match=r"'decoder.block.0.layer.1.EncDecAttention.k.weight' has "
    r"shape \(24, 31\), expected \(24, 32\)",
  ):
    convert.load_checkpoint(str(hf_dir))


def test_hf_integer_tensor_is_rejected(hf_dir):
  _edit_weights(hf_dir, lambda t: t.update({"shared.weight": t["shared.weight"].astype(np.int32)}))
  with pytest.raises(
    ValueError, match="'shared.weight' has dtype int32, expected a floating-point"
  ):
    convert.load_checkpoint(str(hf_dir))


def test_hf_unexpected_and_redundant_tensors(hf_dir, params):
  table = params["token_embedder"]["embedding"]

  def add_copies(t):
    t["encoder.embed_tokens.weight"] = table
    t["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = np.zeros(
      (32, 4), np.float32
    )

  _edit_weights(hf_dir, add_copies)
  _assert_same(params, convert.load_checkpoint(str(hf_dir))[1])  # equal copies are accepted

  _edit_weights(hf_dir, lambda t: t.update({"decoder.embed_tokens.weight": table + 1}))
  with pytest.raises(
    ValueError, match="'decoder.embed_tokens.weight' differs from 'shared.weight'"
  ):
    convert.load_checkpoint(str(hf_dir))

  def add_head(t):
    t.pop("decoder.embed_tokens.weight")
    t["classification_head.dense.weight"] = np.zeros((4, 4), np.float32)

  _edit_weights(hf_dir, add_head)
  with pytest.raises(ValueError, match=r"unexpected tensor\(s\).*'classification_head.dense"):
    convert.load_checkpoint(str(hf_dir))


def test_hf_config_problems(hf_dir, params):
  with pytest.raises(
    ValueError,
    match=r"does not match the checkpoint's: d_ff: checkpoint 64, "
    r"given 128",
  ):
    convert.load_checkpoint(str(hf_dir), CONFIG.replace(d_ff=128))
  config, _ = convert.load_checkpoint(str(hf_dir), CONFIG.replace(dtype="bfloat16"))
  assert config.dtype == "bfloat16"

  cfg_path = hf_dir / "config.json"
  original = json.loads(cfg_path.read_text())
  cfg_path.write_text(json.dumps(dict(original, feed_forward_proj="gated-tanh")))
  with pytest.raises(
    ValueError,
    match=r"unsupported activation 'tanh' in feed_forward_proj "
    r"'gated-tanh'",
  ):
    convert.load_checkpoint(str(hf_dir))
  cfg_path.write_text(json.dumps(dict(original, model_type="umt5")))
  with pytest.raises(ValueError, match="model_type 'umt5' is not a T5 model"):
    convert.load_checkpoint(str(hf_dir))
  cfg_path.write_text(json.dumps({k: v for k, v in original.items() if k != "d_kv"}))
  with pytest.raises(ValueError, match=r"missing T5 config field\(s\) \['d_kv'\]"):
    convert.load_checkpoint(str(hf_dir))
  cfg_path.write_text(json.dumps(dict(original, num_heads=3)))
  with pytest.raises(
    ValueError,
    match=r"'encoder.block.0.layer.0.SelfAttention.q.weight' has "
    r"shape \(24, 32\), expected \(18, 32\)",
  ):
    convert.load_checkpoint(str(hf_dir))


def test_hf_without_safetensors(hf_dir):
  os.remove(hf_dir / WEIGHTS)
  (hf_dir / "pytorch_model.bin").write_bytes(b"")
  with pytest.raises(
    ValueError,
    match=r"no model.safetensors or model.safetensors.index.json; "
    r"found \['pytorch_model.bin'\]",
  ):
    convert.load_checkpoint(str(hf_dir))


def test_hf_output_layer_conventions(params, tmp_path):
  """Which T5Config.tie_word_embeddings each config.json / head combination maps to."""
  hf_t5.save_hf_t5(CONFIG, params, str(tmp_path))
  cfg_path = tmp_path / "config.json"
  original = json.loads(cfg_path.read_text())
  kernel = params["decoder"]["logits_dense"]["kernel"]
  # transformers 5 writes tie_word_embeddings true with scale_decoder_outputs false: untied.
  cfg_path.write_text(
    json.dumps(dict(original, tie_word_embeddings=True, scale_decoder_outputs=False))
  )
  config, loaded = convert.load_checkpoint(str(tmp_path))
  assert not config.tie_word_embeddings
  np.testing.assert_array_equal(loaded["decoder"]["logits_dense"]["kernel"], kernel)
  # A separate head with the original scaling: the scale is folded into the kernel.
  cfg_path.write_text(json.dumps(dict(original, tie_word_embeddings=True)))
  config, loaded = convert.load_checkpoint(str(tmp_path))
  assert not config.tie_word_embeddings
  np.testing.assert_allclose(
    loaded["decoder"]["logits_dense"]["kernel"], kernel * CONFIG.d_model**-0.5, rtol=1e-6
  )
  # A head equal to the table with scaling: the original tied T5.
  _edit_weights(tmp_path, lambda t: t.update({"lm_head.weight": t["shared.weight"]}))
  config, loaded = convert.load_checkpoint(str(tmp_path))
  assert config.tie_word_embeddings and "logits_dense" not in loaded["decoder"]
  # No head stored and no scaling: the table serves as an unscaled head.
  _edit_weights(tmp_path, lambda t: t.pop("lm_head.weight"))
  cfg_path.write_text(json.dumps(original))
  config, loaded = convert.load_checkpoint(str(tmp_path))
  assert not config.tie_word_embeddings
  np.testing.assert_array_equal(
    loaded["decoder"]["logits_dense"]["kernel"], params["token_embedder"]["embedding"].T
  )


def test_hf_config_round_trip():
  for activations, name in [
    (("gelu", "linear"), "gated-gelu"),
    (("relu",), "relu"),
    (("silu", "linear"), "gated-silu"),
    (("gelu_exact",), "gelu"),
  ]:
    cfg = CONFIG.replace(
      mlp_activations=activations,
      tie_word_embeddings=name == "relu",
      relative_attention_max_distance=64,
      layer_norm_epsilon=1e-5,
      num_decoder_layers=3,
    )
    hf = hf_t5.config_to_hf(cfg)
    assert hf["feed_forward_proj"] == name
    assert hf_t5.config_from_hf(hf) == (cfg, cfg.tie_word_embeddings)
  with pytest.raises(
    ValueError,
    match=r"mlp_activations \('gelu_exact', 'linear'\) has no "
    r"Hugging Face feed_forward_proj",
  ):
    hf_t5.config_to_hf(CONFIG.replace(mlp_activations=("gelu_exact", "linear")))


def test_save_hf_checks_params(params, tmp_path):
  flat = tree.flatten(params)
  del flat["encoder/encoder_norm/scale"]
  with pytest.raises(
    ValueError,
    match=r"missing 'encoder/encoder_norm/scale' \(expected shape "
    r"\(32,\)\)",
  ):
    hf_t5.save_hf_t5(CONFIG, tree.unflatten(flat), str(tmp_path))
  with pytest.raises(ValueError, match="dtype must be one of"):
    hf_t5.save_hf_t5(CONFIG, params, str(tmp_path), dtype="int8")
