"""The ViT image encoder and its checkpoint readers, checked against transformers' reference.

Parity tests build random tiny float32 `ViTModel`, `SiglipVisionModel` and `SiglipModel`s (every
weight randomised, layer-norm scales and biases included, so a swapped or untransposed tensor
shows), save them with `save_pretrained`, read them back with `load_hf_vit` and compare outputs on
random images: max abs diff <= 1e-4. The big_vision `.npz` path is checked against the same
references: the test writes the reference's weights in the big_vision layout with its own mapping
(`to_big_vision` below) and reads them with `load_big_vision_npz`.

Tests needing torch / transformers skip when those are missing; the rest need neither.
"""

import functools
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import flax.linen as nn

from adalink.convert import big_vision_vit, safetensors_io, tree, vit_plan
from adalink.convert import hf_vit as hf_vit_convert
from adalink.models import vit

TOL = 1e-4
# Tiny reference dimensions: 4 x 4 patches of 8 px, head_dim 8.
IMAGE, PATCH, WIDTH, DEPTH, HEADS, MLP = 32, 8, 32, 2, 4, 64
BATCH = 2


@functools.lru_cache(maxsize=None)
def _apply_fn(config: vit.ViTConfig):
  return jax.jit(vit.ViT(config).apply)


def run_vit(config: vit.ViTConfig, params, images: np.ndarray) -> np.ndarray:
  return np.asarray(_apply_fn(config)({"params": params}, jnp.asarray(images)), np.float32)


def random_params(config: vit.ViTConfig, seed: int):
  """Random float32 parameters of the model's shapes (from jax.eval_shape: nothing compiled),
  layer-norm scales in [0.5, 1.5] and everything else N(0, 0.2^2)."""
  rng = np.random.RandomState(seed)
  flat = {}
  for key, shape in sorted(vit_plan.expected_shapes(config).items()):
    if key.endswith("norm/scale"):
      flat[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      flat[key] = (0.2 * rng.randn(*shape)).astype(np.float32)
  return tree.unflatten(flat)


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
  assert a.shape == b.shape, (a.shape, b.shape)
  return float(np.max(np.abs(a - b)))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
  return np.random.RandomState(0).uniform(-1, 1, (BATCH, IMAGE, IMAGE, 3)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Hugging Face references


def _randomize(torch, model, seed: int) -> None:
  """Every parameter random: layer-norm scales in [0.5, 1.5], everything else N(0, 0.2^2)
  (transformers initialises norms to 1 / 0 and biases to 0, which would hide mix-ups)."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      if "norm" in name and name.endswith("weight"):
        p.copy_(0.5 + torch.rand(p.shape, generator=gen))
      else:
        p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def _tiny_kwargs():
  return dict(
    image_size=IMAGE,
    patch_size=PATCH,
    hidden_size=WIDTH,
    num_hidden_layers=DEPTH,
    num_attention_heads=HEADS,
    intermediate_size=MLP,
  )


def _reference(torch, module, images: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    pixels = torch.tensor(images.transpose(0, 3, 1, 2))  # HF takes NCHW
    return module(pixel_values=pixels).last_hidden_state.numpy()


@pytest.fixture(scope="module")
def hf_vit(tmp_path_factory, images):
  """(directory, its tensors by name, reference last_hidden_state [B, 1 + N, w])."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  transformers.logging.set_verbosity_error()
  transformers.utils.logging.disable_progress_bar()
  cfg = transformers.ViTConfig(**_tiny_kwargs(), attn_implementation="eager")
  model = transformers.ViTModel(cfg, add_pooling_layer=False).eval()
  _randomize(torch, model, 1)
  path = str(tmp_path_factory.mktemp("hf_vit"))
  model.save_pretrained(path)
  # The names on disk (transformers may rename modules in memory but saves the hub names).
  state = safetensors_io.load_file(os.path.join(path, "model.safetensors"))
  return path, state, _reference(torch, model, images)


@pytest.fixture(scope="module")
def hf_siglip(tmp_path_factory, images):
  """SiglipVisionModel (with its pooling head, which the reader ignores)."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  transformers.logging.set_verbosity_error()
  cfg = transformers.SiglipVisionConfig(**_tiny_kwargs(), attn_implementation="eager")
  model = transformers.SiglipVisionModel(cfg).eval()
  _randomize(torch, model, 2)
  path = str(tmp_path_factory.mktemp("hf_siglip"))
  model.save_pretrained(path)
  # The names on disk (transformers may rename modules in memory but saves the hub names).
  state = safetensors_io.load_file(os.path.join(path, "model.safetensors"))
  return path, state, _reference(torch, model, images)


@pytest.fixture(scope="module")
def hf_siglip_full(tmp_path_factory, images):
  """A two-tower SiglipModel: the vision tower sits under `vision_model.` next to a text tower."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  transformers.logging.set_verbosity_error()
  cfg = transformers.SiglipConfig(
    vision_config=_tiny_kwargs(),
    text_config=dict(
      vocab_size=64,
      hidden_size=WIDTH,
      intermediate_size=MLP,
      num_hidden_layers=1,
      num_attention_heads=HEADS,
      max_position_embeddings=8,
    ),
    attn_implementation="eager",
  )
  model = transformers.SiglipModel(cfg).eval()
  _randomize(torch, model, 3)
  path = str(tmp_path_factory.mktemp("hf_siglip_full"))
  model.save_pretrained(path)
  return path, _reference(torch, model.vision_model, images)


def test_hf_vit_parity(hf_vit, images):
  path, _, ref = hf_vit
  config, params = hf_vit_convert.load_hf_vit(path)
  assert config == vit.ViTConfig(
    IMAGE,
    PATCH,
    WIDTH,
    DEPTH,
    MLP,
    HEADS,
    use_cls_token=True,
    activation="gelu_exact",
    layer_norm_eps=1e-12,
  )
  assert ref.shape == (BATCH, 1 + (IMAGE // PATCH) ** 2, WIDTH) and ref.std() > 0.3
  full = run_vit(config.replace(keep_cls_token=True), params, images)
  patches = run_vit(config, params, images)  # default: [CLS] dropped, as PaLI consumes them
  print(
    f"\nHF ViT parity: max abs diff {max_diff(full, ref):.3g} (all tokens), "
    f"{max_diff(patches, ref[:, 1:]):.3g} (patch tokens)"
  )
  assert max_diff(full, ref) <= TOL
  assert max_diff(patches, ref[:, 1:]) <= TOL


def test_hf_vit_without_qkv_bias(tmp_path, hf_vit, images):
  """`qkv_bias: false` checkpoints store no q/k/v biases; the reader supplies zeros."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  cfg = transformers.ViTConfig(**_tiny_kwargs(), qkv_bias=False, attn_implementation="eager")
  model = transformers.ViTModel(cfg, add_pooling_layer=False).eval()
  _randomize(torch, model, 4)
  model.save_pretrained(str(tmp_path))
  names = safetensors_io.SafetensorsFile(str(tmp_path / "model.safetensors")).keys()
  assert not any(n.endswith("attention.attention.query.bias") for n in names)
  config, params = hf_vit_convert.load_hf_vit(str(tmp_path))
  out = run_vit(config.replace(keep_cls_token=True), params, images)
  diff = max_diff(out, _reference(torch, model, images))
  print(f"\nHF ViT (qkv_bias=False) parity: max abs diff {diff:.3g}")
  assert diff <= TOL


def test_siglip_vision_parity(hf_siglip, images):
  path, _, ref = hf_siglip
  config, params = hf_vit_convert.load_hf_vit(path)
  assert config == vit.ViTConfig(
    IMAGE,
    PATCH,
    WIDTH,
    DEPTH,
    MLP,
    HEADS,
    use_cls_token=False,
    activation="gelu",
    layer_norm_eps=1e-6,
  )
  assert ref.shape == (BATCH, (IMAGE // PATCH) ** 2, WIDTH) and ref.std() > 0.3
  out = run_vit(config, params, images)
  print(f"\nSigLIP vision parity: max abs diff {max_diff(out, ref):.3g}")
  assert max_diff(out, ref) <= TOL


def test_siglip_full_model_parity(hf_siglip_full, images):
  path, ref = hf_siglip_full
  config, params = hf_vit_convert.load_hf_vit(path)
  out = run_vit(config, params, images)
  print(f"\nSigLIP (two-tower) vision parity: max abs diff {max_diff(out, ref):.3g}")
  assert max_diff(out, ref) <= TOL


# --------------------------------------------------------------------------------------------
# big_vision .npz written from the references' weights
#
# big_vision layout (models/vit.py): conv stem `embedding/kernel` (p, p, C, w); `pos_embedding`
# (1, N, w); `cls` (1, 1, w), concatenated after the position embeddings are added; per block
# `Transformer/encoderblock_{i}/` with LayerNorm_0 (pre-attention), LayerNorm_1 (pre-MLP),
# MultiHeadDotProductAttention_0/{query,key,value}/kernel (w, heads, head_dim) and bias
# (heads, head_dim), .../out/kernel (heads, head_dim, w), MlpBlock_0/Dense_0 and Dense_1
# (kernels (in, out)); `Transformer/encoder_norm`. Torch linears are (out, in), hence `.T`.

_HF_NAMES = {
  # family -> (patch conv, norm before attention, norm before MLP, q, k, v, out, fc1, fc2,
  #            final norm, per-layer prefix)
  "vit": (
    "embeddings.patch_embeddings.projection",
    "layernorm_before",
    "layernorm_after",
    "attention.attention.query",
    "attention.attention.key",
    "attention.attention.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
    "layernorm",
    "encoder.layer",
  ),
  "siglip": (
    "embeddings.patch_embedding",
    "layer_norm1",
    "layer_norm2",
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.out_proj",
    "mlp.fc1",
    "mlp.fc2",
    "post_layernorm",
    "encoder.layers",
  ),
}


def to_big_vision(state, family: str, layout: str = "linen", prefix: str = ""):
  """HF tensors (numpy, as saved) -> flat big_vision dict. `layout`: 'linen' (today's names),
  'scanned' (blocks stacked on a leading axis) or 'pre_linen' (original ViT release: MHA_1,
  LayerNorm_2, MlpBlock_3, `Transformer/posembed_input/pos_embedding` with a [CLS] row)."""
  patch, ln1, ln2, q, k, v, o, fc1, fc2, final, layer = _HF_NAMES[family]
  d = WIDTH // HEADS
  out = {
    "embedding/kernel": state[f"{patch}.weight"].transpose(2, 3, 1, 0),
    "embedding/bias": state[f"{patch}.bias"],
    "Transformer/encoder_norm/scale": state[f"{final}.weight"],
    "Transformer/encoder_norm/bias": state[f"{final}.bias"],
  }
  if family == "vit":
    pe = state["embeddings.position_embeddings"]
    if layout == "pre_linen":
      out["Transformer/posembed_input/pos_embedding"] = pe
      out["cls"] = state["embeddings.cls_token"]
    else:
      out["pos_embedding"] = pe[:, 1:]
      out["cls"] = state["embeddings.cls_token"] + pe[:, :1]
  else:
    out["pos_embedding"] = state["embeddings.position_embedding.weight"][None]
  names = (
    ("LayerNorm_0", "MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3")
    if layout == "pre_linen"
    else ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")
  )
  bln1, mha, bln2, mlp = names
  blocks = []
  for i in range(DEPTH):
    h = f"{layer}.{i}"
    blk = {
      f"{bln1}/scale": state[f"{h}.{ln1}.weight"],
      f"{bln1}/bias": state[f"{h}.{ln1}.bias"],
      f"{bln2}/scale": state[f"{h}.{ln2}.weight"],
      f"{bln2}/bias": state[f"{h}.{ln2}.bias"],
      f"{mha}/out/kernel": state[f"{h}.{o}.weight"].T.reshape(HEADS, d, WIDTH),
      f"{mha}/out/bias": state[f"{h}.{o}.bias"],
      f"{mlp}/Dense_0/kernel": state[f"{h}.{fc1}.weight"].T,
      f"{mlp}/Dense_0/bias": state[f"{h}.{fc1}.bias"],
      f"{mlp}/Dense_1/kernel": state[f"{h}.{fc2}.weight"].T,
      f"{mlp}/Dense_1/bias": state[f"{h}.{fc2}.bias"],
    }
    for name, hf in (("query", q), ("key", k), ("value", v)):
      blk[f"{mha}/{name}/kernel"] = state[f"{h}.{hf}.weight"].T.reshape(WIDTH, HEADS, d)
      blk[f"{mha}/{name}/bias"] = state[f"{h}.{hf}.bias"].reshape(HEADS, d)
    blocks.append(blk)
  if layout == "scanned":
    for sub in blocks[0]:
      out[f"Transformer/encoderblock/{sub}"] = np.stack([b[sub] for b in blocks])
  else:
    for i, blk in enumerate(blocks):
      out.update({f"Transformer/encoderblock_{i}/{sub}": a for sub, a in blk.items()})
  return {prefix + key: np.asarray(a, np.float32) for key, a in out.items()}


def _npz_config(family: str) -> vit.ViTConfig:
  if family == "vit":
    return vit.ViTConfig(
      IMAGE,
      PATCH,
      WIDTH,
      DEPTH,
      MLP,
      HEADS,
      use_cls_token=True,
      activation="gelu_exact",
      layer_norm_eps=1e-12,
      keep_cls_token=True,
    )
  return vit.ViTConfig(IMAGE, PATCH, WIDTH, DEPTH, MLP, HEADS)


@pytest.mark.parametrize(
  "family,layout,prefix,extra",
  [
    ("vit", "linen", "", {}),
    ("vit", "pre_linen", "", {"head/kernel": np.zeros((WIDTH, 5), np.float32)}),
    # A SigLIP checkpoint: image tower under params/img/, next to a text tower and t, b.
    (
      "siglip",
      "linen",
      "params/img/",
      {
        "params/txt/Embed_0/embedding": np.ones((8, 4), np.float32),
        "params/t": np.ones((1,), np.float32),
      },
    ),
    ("siglip", "scanned", "img/", {}),
  ],
)
def test_big_vision_npz_parity(tmp_path, hf_vit, hf_siglip, images, family, layout, prefix, extra):
  _, state, ref = hf_vit if family == "vit" else hf_siglip
  path = str(tmp_path / "ckpt.npz")
  np.savez(path, **to_big_vision(state, family, layout, prefix), **extra)
  config = _npz_config(family)
  params = big_vision_vit.load_big_vision_npz(path, config)
  out = run_vit(config, params, images)
  print(
    f"\nbig_vision npz parity ({family}, {layout}, prefix {prefix!r}): max abs diff "
    f"{max_diff(out, ref):.3g}"
  )
  assert max_diff(out, ref) <= TOL


def test_npz_and_hf_readers_agree(tmp_path, hf_siglip):
  path, state, _ = hf_siglip
  npz = str(tmp_path / "ckpt.npz")
  np.savez_compressed(npz, **to_big_vision(state, "siglip"))
  config, from_hf = hf_vit_convert.load_hf_vit(path)
  from_npz = big_vision_vit.load_big_vision_npz(npz, config)
  flat_hf, flat_npz = (tree.flatten(t) for t in (from_hf, from_npz))
  assert sorted(flat_hf) == sorted(flat_npz)
  for key in flat_hf:
    np.testing.assert_array_equal(flat_hf[key], flat_npz[key], err_msg=key)


# --------------------------------------------------------------------------------------------
# Errors


def _copy_hf_dir(src: str, dst: str, edit) -> str:
  """A copy of a Hugging Face directory whose tensors went through `edit(dict) -> dict`."""
  os.makedirs(dst)
  shutil.copy(os.path.join(src, "config.json"), dst)
  tensors = safetensors_io.load_file(os.path.join(src, "model.safetensors"))
  safetensors_io.save_file(edit(tensors), os.path.join(dst, "model.safetensors"))
  return dst


def test_hf_missing_tensor(tmp_path, hf_vit):
  key = "encoder.layer.1.attention.attention.key.weight"
  d = _copy_hf_dir(
    hf_vit[0], str(tmp_path / "m"), lambda t: {k: v for k, v in t.items() if k != key}
  )
  with pytest.raises(ValueError, match=rf"missing '{key}' \(expected shape \(32, 32\)\)"):
    hf_vit_convert.load_hf_vit(d)


def test_hf_wrong_shape(tmp_path, hf_siglip):
  key = "encoder.layers.0.mlp.fc1.weight"
  d = _copy_hf_dir(hf_siglip[0], str(tmp_path / "s"), lambda t: {**t, key: t[key][:60]})
  with pytest.raises(ValueError, match=rf"'{key}' has shape \(60, 32\), expected \(64, 32\)"):
    hf_vit_convert.load_hf_vit(d)


def test_hf_extra_block_refused(tmp_path, hf_siglip):
  extra = "encoder.layers.2.mlp.fc1.bias"
  d = _copy_hf_dir(
    hf_siglip[0], str(tmp_path / "x"), lambda t: {**t, extra: np.zeros((MLP,), np.float32)}
  )
  with pytest.raises(ValueError, match=rf"no place for: '{extra}' \(64,\)"):
    hf_vit_convert.load_hf_vit(d)


def test_hf_bad_config(tmp_path, hf_vit):
  d = _copy_hf_dir(hf_vit[0], str(tmp_path / "c"), lambda t: t)
  cfg_path = os.path.join(d, "config.json")
  with open(cfg_path) as f:
    cfg = json.load(f)
  with open(cfg_path, "w") as f:
    json.dump({**cfg, "model_type": "clip_vision_model"}, f)
  with pytest.raises(ValueError, match="model_type 'clip_vision_model' is not a supported ViT"):
    hf_vit_convert.load_hf_vit(d)
  with open(cfg_path, "w") as f:
    json.dump({**cfg, "hidden_act": "quick_gelu"}, f)
  with pytest.raises(ValueError, match="hidden_act 'quick_gelu' is not supported"):
    hf_vit_convert.load_hf_vit(d)


def test_hf_given_config_must_match(hf_vit):
  config, _ = hf_vit_convert.load_hf_vit(hf_vit[0])
  with pytest.raises(ValueError, match="layer_norm_eps: checkpoint 1e-12, given 1e-06"):
    hf_vit_convert.load_hf_vit(hf_vit[0], config.replace(layer_norm_eps=1e-6))
  # Run-time fields are the caller's choice.
  chosen = config.replace(pooling="cls", dtype="bfloat16")
  assert hf_vit_convert.load_hf_vit(hf_vit[0], chosen)[0] is chosen


@pytest.fixture(scope="module")
def npz_arrays():
  """A big_vision-layout checkpoint from random project parameters (no torch needed)."""
  config = vit.get_config("tiny")
  params = tree.flatten(random_params(config, 3))
  d = config.head_dim
  out = {
    "embedding/kernel": np.asarray(params["embedding/kernel"]).reshape(PATCH, PATCH, 3, WIDTH),
    "embedding/bias": params["embedding/bias"],
    "pos_embedding": np.asarray(params["pos_embedding"])[None],
    "Transformer/encoder_norm/scale": params["encoder/encoder_norm/scale"],
    "Transformer/encoder_norm/bias": params["encoder/encoder_norm/bias"],
  }
  for i in range(config.depth):
    ours, bv = f"encoder/layers_{i}", f"Transformer/encoderblock_{i}"
    out[f"{bv}/LayerNorm_0/scale"] = params[f"{ours}/pre_attention_layer_norm/scale"]
    out[f"{bv}/LayerNorm_0/bias"] = params[f"{ours}/pre_attention_layer_norm/bias"]
    out[f"{bv}/LayerNorm_1/scale"] = params[f"{ours}/pre_mlp_layer_norm/scale"]
    out[f"{bv}/LayerNorm_1/bias"] = params[f"{ours}/pre_mlp_layer_norm/bias"]
    for name in ("query", "key", "value"):
      mha = f"{bv}/MultiHeadDotProductAttention_0/{name}"
      out[f"{mha}/kernel"] = np.asarray(params[f"{ours}/attention/{name}/kernel"]).reshape(
        WIDTH, HEADS, d
      )
      out[f"{mha}/bias"] = np.asarray(params[f"{ours}/attention/{name}/bias"]).reshape(HEADS, d)
    out[f"{bv}/MultiHeadDotProductAttention_0/out/kernel"] = np.asarray(
      params[f"{ours}/attention/out/kernel"]
    ).reshape(HEADS, d, WIDTH)
    out[f"{bv}/MultiHeadDotProductAttention_0/out/bias"] = params[f"{ours}/attention/out/bias"]
    for j, dense in enumerate(("wi", "wo")):
      out[f"{bv}/MlpBlock_0/Dense_{j}/kernel"] = params[f"{ours}/mlp/{dense}/kernel"]
      out[f"{bv}/MlpBlock_0/Dense_{j}/bias"] = params[f"{ours}/mlp/{dense}/bias"]
  return config, params, {k: np.asarray(v, np.float32) for k, v in out.items()}


def test_npz_round_trip(tmp_path, npz_arrays):
  config, params, arrays = npz_arrays
  path = str(tmp_path / "ok.npz")
  np.savez(path, **arrays)
  loaded = tree.flatten(big_vision_vit.load_big_vision_npz(path, "tiny"))
  assert sorted(loaded) == sorted(params)
  for key, value in params.items():
    np.testing.assert_array_equal(loaded[key], np.asarray(value), err_msg=key)


def test_npz_prefix_choice(tmp_path, npz_arrays):
  config, params, arrays = npz_arrays
  path = str(tmp_path / "two.npz")
  np.savez(
    path, **{f"a/{k}": v for k, v in arrays.items()}, **{f"b/{k}": 2 * v for k, v in arrays.items()}
  )
  with pytest.raises(ValueError, match=r"several ViTs .* prefixes \['a/', 'b/'\]; pass prefix="):
    big_vision_vit.load_big_vision_npz(path, config)
  loaded = tree.flatten(big_vision_vit.load_big_vision_npz(path, config, prefix="b/"))
  np.testing.assert_array_equal(loaded["pos_embedding"], 2 * params["pos_embedding"])
  with pytest.raises(ValueError, match="no key starts with the given prefix 'c/'"):
    big_vision_vit.load_big_vision_npz(path, config, prefix="c/")


def test_npz_missing_key(tmp_path, npz_arrays):
  config, _, arrays = npz_arrays
  key = "params/img/Transformer/encoderblock_1/MlpBlock_0/Dense_1/kernel"
  path = str(tmp_path / "missing.npz")
  np.savez(path, **{f"params/img/{k}": v for k, v in arrays.items() if f"params/img/{k}" != key})
  with pytest.raises(ValueError, match=rf"missing '{key}' \(expected shape \(64, 32\)\)"):
    big_vision_vit.load_big_vision_npz(path, config)


def test_npz_wrong_shape(tmp_path, npz_arrays):
  config, _, arrays = npz_arrays
  key = "Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel"
  path = str(tmp_path / "shape.npz")
  np.savez(path, **{**arrays, key: arrays[key].reshape(WIDTH, 2, 16)})
  with pytest.raises(ValueError, match=rf"'{key}' has shape \(32, 2, 16\), expected \(32, 4, 8\)"):
    big_vision_vit.load_big_vision_npz(path, config)


def test_npz_config_mismatches(tmp_path, npz_arrays):
  config, _, arrays = npz_arrays
  path = str(tmp_path / "cls.npz")
  np.savez(path, **arrays, cls=np.zeros((1, 1, WIDTH), np.float32))
  with pytest.raises(ValueError, match=r"'cls' \(1, 1, 32\).*set use_cls_token=True"):
    big_vision_vit.load_big_vision_npz(path, config)
  # A deeper config than the checkpoint: the missing block is named.
  with pytest.raises(ValueError, match="missing 'Transformer/encoderblock_2/LayerNorm_0/scale'"):
    big_vision_vit.load_big_vision_npz(path, config.replace(depth=3, use_cls_token=True))


def test_npz_not_a_checkpoint(tmp_path, npz_arrays):
  bad = tmp_path / "bad.npz"
  bad.write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="not an .npz file"):
    big_vision_vit.load_big_vision_npz(str(bad), "tiny")
  other = str(tmp_path / "other.npz")
  np.savez(other, **{"txt/Encoder_0/encoder_norm/scale": np.ones(3, np.float32)})
  with pytest.raises(ValueError, match="found no ViT"):
    big_vision_vit.load_big_vision_npz(other, "tiny")


# --------------------------------------------------------------------------------------------
# The model itself


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("image_size", 30, "image_size 30 is not a multiple of patch_size 8"),
    ("num_heads", 5, "width 32 is not divisible by num_heads 5"),
    ("depth", 0, "depth must be a positive integer, got 0"),
    ("activation", "gelu_fast", "unknown activation 'gelu_fast'"),
    ("pooling", "map", "pooling must be one of"),
    ("pooling", "cls", "pooling 'cls' needs use_cls_token=True"),
    ("keep_cls_token", True, "keep_cls_token needs use_cls_token=True"),
    ("layer_norm_eps", 0.0, "layer_norm_eps must be a positive number, got 0.0"),
    ("dtype", "float64", "dtype must be one of"),
  ],
)
def test_config_validation(field, value, message):
  with pytest.raises(ValueError, match=message):
    vit.get_config("tiny", **{field: value})


def test_unknown_size():
  with pytest.raises(ValueError, match=r"unknown ViT size 'H/14'"):
    vit.get_config("H/14")


def test_wrong_image_shape():
  with pytest.raises(
    ValueError,
    match=r"images of shape \[batch, 32, 32, 3\] \(NHWC\), got "
    r"\(1, 3, 32, 32\)",
  ):
    jax.eval_shape(
      lambda: vit.ViT(vit.get_config("tiny")).init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 32, 32)))
    )


def _count_formula(c: vit.ViTConfig) -> int:
  """Closed-form parameter count: per block q, k, v, out (w*w + w each), MLP
  (w*m + m + m*w + w), two layer norms (2w each); patch projection, position table, final norm."""
  w, m = c.width, c.mlp_dim
  block = 4 * (w * w + w) + (w * m + m) + (m * w + w) + 4 * w
  stem = c.patch_size**2 * c.num_channels * w + w
  return c.depth * block + stem + c.num_patches * w + 2 * w + (w if c.use_cls_token else 0)


@pytest.mark.parametrize(
  "size,dims,approx,rel",
  [
    # The exact check is the formula; the rounded figures usually quoted (B/16 ~86M, L/16 ~303M
    # without a classifier) only guard the formula itself, hence 1%. "So400m" names a size
    # class: its encoder at 224 px without the MAP head has 412.4M, hence 5%.
    ("B/16", (16, 768, 12, 3072, 12), 86e6, 0.01),
    ("L/16", (16, 1024, 24, 4096, 16), 303e6, 0.01),
    ("So400m/14", (14, 1152, 27, 4304, 16), 400e6, 0.05),
  ],
)
def test_named_sizes(size, dims, approx, rel):
  c = vit.get_config(size)
  assert (c.patch_size, c.width, c.depth, c.mlp_dim, c.num_heads) == dims
  count = vit.num_params(c)  # from jax.eval_shape, nothing allocated
  assert count == _count_formula(c)
  assert abs(count - approx) <= rel * approx, count
  with_cls = c.replace(use_cls_token=True)
  assert vit.num_params(with_cls) == _count_formula(with_cls)


def test_every_parameter_has_logical_axes():
  config = vit.get_config("tiny", use_cls_token=True)
  boxed = vit.abstract_params(config)["params"]
  leaves = jax.tree_util.tree_leaves(boxed, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  assert len(leaves) == 4 + 16 * config.depth + 2
  for leaf in leaves:
    assert isinstance(leaf, nn.LogicallyPartitioned), leaf
    assert len(leaf.names) == leaf.value.ndim and all(leaf.names), leaf.names


def test_frozen_pooling_and_dtype(images):
  config = vit.get_config("tiny", use_cls_token=True, keep_cls_token=True)
  params = random_params(config, 1)
  full = run_vit(config, params, images)
  assert full.shape == (BATCH, 17, WIDTH)
  # Frozen: no gradient reaches any parameter, however the output is used.
  loss = lambda p: jnp.sum(vit.ViT(config).apply({"params": p}, images) ** 2)
  grads = jax.jit(jax.grad(loss))(params)
  assert all(not np.any(np.asarray(g)) for g in jax.tree_util.tree_leaves(grads))
  base = config.replace(keep_cls_token=False)
  np.testing.assert_allclose(
    run_vit(base.replace(pooling="cls"), params, images), full[:, 0], atol=1e-6
  )
  np.testing.assert_allclose(
    run_vit(base.replace(pooling="gap"), params, images), full[:, 1:].mean(axis=1), atol=1e-5
  )
  bf16 = _apply_fn(base.replace(dtype="bfloat16"))({"params": params}, images)
  assert bf16.dtype == jnp.bfloat16 and bf16.shape == (BATCH, 16, WIDTH)
  assert max_diff(np.asarray(bf16, np.float32), full[:, 1:]) < 0.1
