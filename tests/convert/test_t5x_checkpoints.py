"""T5X checkpoints: the real file written by T5X, the TensorStore directory layout, and errors."""

import json
import os
import shutil

import ml_dtypes
import msgpack
import numpy as np
import pytest
from flax import serialization

from adalink import convert
from adalink.convert import t5x, tree
from adalink.models import t5

REAL = os.path.join("models", "t5x-testdata", "test_t5_tiny.checkpoint_0")


def _decode_msgpack(path):
  """The checkpoint parsed with msgpack alone (not flax): extension type 1 holds a msgpack
  (shape, dtype name, C-order bytes) triple; an independent check of the reader."""

  def ext(code, data):
    assert code == 1, f"unexpected msgpack extension type {code}"
    shape, dtype, buf = msgpack.unpackb(data, raw=False)
    dt = np.dtype(getattr(ml_dtypes, dtype)) if hasattr(ml_dtypes, dtype) else np.dtype(dtype)
    return np.frombuffer(buf, dtype=dt).reshape(shape)

  with open(path, "rb") as f:
    return msgpack.unpackb(f.read(), ext_hook=ext, raw=False, strict_map_key=False)


@pytest.fixture(scope="module")
def real(shared_dir):
  path = shared_dir / REAL
  if not path.is_file():
    pytest.skip(f"{path} not found")
  config, params = t5x.load_t5x(str(path))
  return str(path), config, params


# The shapes of T5X's t5_1_1 "tiny" (the real file's model), for tests that need no real file.
TINY = t5.T5Config(
  vocab_size=32128,
  d_model=8,
  num_heads=4,
  d_kv=3,
  d_ff=16,
  num_encoder_layers=2,
  num_decoder_layers=2,
  mlp_activations=("gelu", "linear"),
  tie_word_embeddings=False,
)


@pytest.fixture(scope="module")
def tiny():
  """(None, config, random params) shaped like the real file, for tests that do not need it."""
  rng = np.random.RandomState(0)
  params = tree.unflatten(
    {k: rng.randn(*shape).astype(np.float32) for k, shape in tree.expected_shapes(TINY).items()}
  )
  return None, TINY, params


def _assert_same(a, b):
  fa, fb = tree.flatten(a), tree.flatten(b)
  assert sorted(fa) == sorted(fb)
  for k in fa:
    assert fb[k].dtype == np.float32
    np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_real_checkpoint_config_and_values(real):
  path, config, params = real
  # T5X's t5_1_1 "tiny": emb_dim 8, 4 heads of 3, mlp_dim 16, 2 + 2 layers, gated GELU, untied.
  assert config == TINY
  raw = _decode_msgpack(path)
  assert raw["version"] == 3
  _assert_same(raw["optimizer"]["target"], params)
  assert set(tree.flatten(params)) == set(tree.expected_shapes(config))


def test_real_checkpoint_logits_match_transformers(real, tmp_path):
  pytest.importorskip("torch", reason="compares against torch transformers")
  pytest.importorskip("transformers", reason="compares against transformers")
  from tests.convert import hf_reference as ref
  import transformers  # pylint: disable=import-outside-toplevel

  _, config, params = real
  convert.save_hf_t5(config, params, str(tmp_path))
  model = transformers.T5ForConditionalGeneration.from_pretrained(
    str(tmp_path), attn_implementation="eager"
  ).eval()
  rng = np.random.RandomState(0)
  # 150 input positions: past the checkpoint's max_distance of 128.
  enc = ref.padded_batch(rng, [150, 97, 12], 150, config.vocab_size)
  targets = ref.padded_batch(rng, [40, 25, 3], 40, config.vocab_size)
  theirs = ref.hf_logits(model, enc, targets)
  ours = ref.flax_logits(config, params, enc, targets)
  diff = ref.max_diff_at_targets(ours, theirs, targets)
  print(
    f"\nT5X test_t5_tiny: max |logit diff| = {diff:.2e} (logit scale {np.abs(theirs).max():.3f})"
  )
  assert diff <= 1e-4


def test_given_config_is_checked(real):
  path, config, params = real
  same_config, same = t5x.load_t5x(path, config.replace(dtype="bfloat16", dropout_rate=0.0))
  assert same_config.dtype == "bfloat16"
  _assert_same(params, same)
  with pytest.raises(
    ValueError,
    match=r"50 parameter problem\(s\): 'decoder/decoder_norm/scale' "
    r"has shape \(8,\), expected \(32,\)",
  ):
    t5x.load_t5x(path, "tiny")
  with pytest.raises(
    ValueError,
    match=r"'encoder/relpos_bias/rel_embedding' has shape \(4, 32\), "
    r"expected \(2, 32\)",
  ):
    t5x.load_t5x(path, config.replace(num_heads=2, d_kv=6))
  with_overrides, _ = t5x.load_t5x(
    path, relative_attention_max_distance=64, mlp_activations=("silu", "linear")
  )
  assert with_overrides == config.replace(
    relative_attention_max_distance=64, mlp_activations=("silu", "linear")
  )
  with pytest.raises(ValueError, match=r"unknown T5Config field\(s\) \['heads'\]"):
    t5x.load_t5x(path, heads=2)


def test_real_checkpoint_rewritten_in_directory_layout(real, tmp_path):
  path, config, params = real
  t5x.save_t5x_dir(params, str(tmp_path / "checkpoint_0"), config=config)
  loaded_config, loaded = convert.load_checkpoint(str(tmp_path / "checkpoint_0"))
  assert loaded_config == config
  _assert_same(_decode_msgpack(path)["optimizer"]["target"], loaded)


def test_directory_layout_loads_like_single_file(tiny, tmp_path):
  _, config, params = tiny
  ckpt = tmp_path / "checkpoint_7"
  t5x.save_t5x_dir(params, str(ckpt), step=7, config=config)
  raw = _decode_msgpack(ckpt / "checkpoint")
  spec = raw["optimizer"]["target"]["encoder"]["layers_0"]["attention"]["query"]["kernel"]
  assert spec["driver"] == "zarr" and spec["dtype"] == "float32"
  assert spec["kvstore"] == {
    "driver": "file",
    "path": "target.encoder.layers_0.attention.query.kernel",
  }
  assert spec["metadata"]["shape"] == [8, 12] and spec["metadata"]["compressor"] == {"id": "gzip"}
  zarray = json.loads(
    (ckpt / "target.encoder.layers_0.attention.query.kernel" / ".zarray").read_text()
  )
  assert zarray["compressor"]["id"] == "gzip" and zarray["shape"] == [8, 12]
  t5x.save_t5x(params, str(tmp_path / "single"), config=config)
  _, single = convert.load_checkpoint(str(tmp_path / "single"))
  _assert_same(params, single)
  for path in (ckpt, ckpt / "checkpoint"):
    loaded_config, loaded = convert.load_checkpoint(str(path))
    assert loaded_config == config
    _assert_same(single, loaded)


def test_large_arrays_written_in_several_chunks(tiny, tmp_path, monkeypatch):
  _, config, params = tiny
  monkeypatch.setattr(t5x, "_CHUNK_BYTES", 64 * 1024)
  t5x.save_t5x_dir(params, str(tmp_path), config=config)
  table = tmp_path / "target.token_embedder.embedding"
  chunks = [n for n in os.listdir(table) if not n.startswith(".")]
  assert len(chunks) == 16  # 32128 x 8 float32 = 1 MiB in 64 KiB chunks
  _assert_same(params, t5x.load_t5x(str(tmp_path))[1])


def test_chunk_shape():
  assert t5x.chunk_shape((32128, 4096), 4) == (4016, 4096)  # 526 MB -> 66 MB
  assert t5x.chunk_shape((10, 3), 4, max_bytes=48) == (3, 3)  # ceil-halving: 10 -> 5 -> 3
  assert t5x.chunk_shape((7,), 4) == (7,)
  for shape, itemsize, max_bytes in [((32128, 4096), 2, 2**20), ((5, 7, 9), 4, 100)]:
    chunk = t5x.chunk_shape(shape, itemsize, max_bytes)
    assert np.prod(chunk) * itemsize <= max_bytes and all(1 <= c <= s for c, s in zip(chunk, shape))


def _rewrite_specs(ckpt, fn):
  """Applies `fn` to every TensorStore spec in ckpt/checkpoint, in place."""
  path = os.path.join(ckpt, "checkpoint")
  with open(path, "rb") as f:
    contents = serialization.msgpack_restore(f.read())

  def walk(node):
    if isinstance(node, dict) and "driver" in node:
      return fn(dict(node))
    if isinstance(node, dict):
      return {k: walk(v) for k, v in node.items()}
    return node

  contents["optimizer"]["target"] = walk(contents["optimizer"]["target"])
  with open(path, "wb") as f:
    f.write(serialization.msgpack_serialize(contents))


def _old_style(spec):
  # TensorStore < 0.1.14 specs kept the relative path at the top level.
  return dict(spec, path=spec["kvstore"]["path"], kvstore={"driver": "file"})


def _gcs_style(spec):
  # Checkpoints written on GCS name a dummy bucket; read locally they resolve to the files.
  return dict(
    spec, kvstore={"driver": "gcs", "bucket": "t5x-dummy-bucket", "path": spec["kvstore"]["path"]}
  )


@pytest.mark.parametrize("variant", [_old_style, _gcs_style])
def test_older_and_gcs_spec_forms(tiny, tmp_path, variant):
  _, config, params = tiny
  t5x.save_t5x_dir(params, str(tmp_path), config=config)
  _rewrite_specs(str(tmp_path), variant)
  _assert_same(params, t5x.load_t5x(str(tmp_path))[1])


def test_single_file_writer_round_trip(tiny, tmp_path):
  _, config, params = tiny
  t5x.save_t5x(params, str(tmp_path / "f32"), step=3, config=config)
  _assert_same(params, t5x.load_t5x(str(tmp_path / "f32"))[1])
  assert int(_decode_msgpack(tmp_path / "f32")["optimizer"]["state"]["step"]) == 3
  t5x.save_t5x(params, str(tmp_path / "bf16"), config=config, dtype="bfloat16")
  raw = _decode_msgpack(tmp_path / "bf16")["optimizer"]["target"]
  assert raw["token_embedder"]["embedding"].dtype == ml_dtypes.bfloat16
  rounded = {
    k: v.astype(ml_dtypes.bfloat16).astype(np.float32) for k, v in tree.flatten(params).items()
  }
  _assert_same(tree.unflatten(rounded), t5x.load_t5x(str(tmp_path / "bf16"))[1])


def test_missing_and_misshaped_parameters_are_named(tiny, tmp_path):
  _, _, params = tiny
  flat = tree.flatten(params)
  del flat["encoder/layers_1/mlp/wo/kernel"]
  t5x.save_t5x(tree.unflatten(flat), str(tmp_path / "missing"))
  with pytest.raises(
    ValueError,
    match=r"missing 'encoder/layers_1/mlp/wo/kernel' "
    r"\(expected shape \(16, 8\)\)",
  ):
    t5x.load_t5x(str(tmp_path / "missing"))

  flat = tree.flatten(params)
  flat["decoder/layers_0/mlp/wi_1/kernel"] = flat["decoder/layers_0/mlp/wi_1/kernel"][:, :15]
  t5x.save_t5x_dir(tree.unflatten(flat), str(tmp_path / "misshaped"))
  with pytest.raises(
    ValueError,
    match=r"'decoder/layers_0/mlp/wi_1/kernel' has shape \(8, 15\), "
    r"expected \(8, 16\)",
  ):
    t5x.load_t5x(str(tmp_path / "misshaped"))

  flat["decoder/layers_0/mlp/wi_1/kernel"] = np.zeros((8, 16), np.float32)
  flat["encoder/layers_0/extra/kernel"] = np.zeros((2, 2), np.float32)
  t5x.save_t5x(tree.unflatten(flat), str(tmp_path / "extra"))
  with pytest.raises(
    ValueError,
    match=r"unexpected 'encoder/layers_0/extra/kernel' \(shape "
    r"\(2, 2\)\)",
  ):
    t5x.load_t5x(str(tmp_path / "extra"))


def test_unreadable_tensorstore_arrays(tiny, tmp_path):
  _, config, params = tiny
  t5x.save_t5x_dir(params, str(tmp_path), config=config)
  shutil.rmtree(tmp_path / "target.decoder.decoder_norm.scale")
  with pytest.raises(
    ValueError,
    match=r"'decoder/decoder_norm/scale': cannot read TensorStore "
    r"array at .*target\.decoder\.decoder_norm\.scale",
  ):
    t5x.load_t5x(str(tmp_path))
  _rewrite_specs(str(tmp_path), lambda s: dict(s, dtype="uint16"))
  with pytest.raises(ValueError, match="stored as uint16"):
    t5x.load_t5x(str(tmp_path))


def test_bad_paths_and_files(tiny, tmp_path):
  _, config, params = tiny
  model_dir = tmp_path / "model"
  for step in (100, 20):
    t5x.save_t5x(params, str(model_dir / f"checkpoint_{step}" / "checkpoint"), config=config)
  with pytest.raises(ValueError, match=r"holding \['checkpoint_20', 'checkpoint_100'\]; pass one"):
    convert.load_checkpoint(str(model_dir))
  (tmp_path / "junk").write_bytes(b"\xc1 not msgpack")
  with pytest.raises(ValueError, match="junk: not a msgpack"):
    t5x.load_t5x(str(tmp_path / "junk"))
  (tmp_path / "no_target").write_bytes(serialization.msgpack_serialize({"version": 3, "x": 1}))
  with pytest.raises(ValueError, match=r"no 'optimizer/target'.*\['version', 'x'\]"):
    t5x.load_t5x(str(tmp_path / "no_target"))
  with pytest.raises(ValueError, match="does not exist"):
    t5x.load_t5x(str(tmp_path / "nothing_here"))
