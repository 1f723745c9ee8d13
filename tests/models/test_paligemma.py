"""PaliGemma / PaliGemma 2 in Flax against `transformers` on random models it builds itself.

Each case writes a random PaliGemmaForConditionalGeneration (Gemma or Gemma 2 decoder; image sizes
other than 224; one file, shards or bfloat16) with `save_pretrained`, reads it with
`adalink.convert.hf_paligemma`, and compares the answer's logits (prefix = image tokens + prompt,
attended in full; answer causal) and greedy tokens against `generate`.
"""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="parity tests compare against torch transformers")
transformers = pytest.importorskip("transformers", reason="parity tests compare against it")

from adalink.convert import hf_paligemma, safetensors_io  # noqa: E402
from adalink.models import paligemma  # noqa: E402
from adalink.train import decoding  # noqa: E402

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

VOCAB, IMAGE_TOKEN = 120, 119
CASES = {
  "pg1_mqa_28px": (dict(model_type="gemma", num_key_value_heads=1), 28, "single"),
  "pg2_window_caps_42px_sharded": (
    dict(
      model_type="gemma2",
      num_key_value_heads=2,
      sliding_window=3,
      query_pre_attn_scalar=10,
      attn_logit_softcapping=5.0,
      final_logit_softcapping=3.0,
    ),
    42,
    "sharded",
  ),
  "pg1_gqa_bf16": (dict(model_type="gemma", num_key_value_heads=2), 28, "bf16"),
}


def hf_paligemma_model(text_kw, image_size, seed):
  torch.manual_seed(seed)
  vision = dict(
    model_type="siglip_vision_model",
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=image_size,
    patch_size=14,
    vision_use_head=False,
  )
  text = dict(
    vocab_size=VOCAB,
    hidden_size=40,
    intermediate_size=56,
    num_hidden_layers=2,
    num_attention_heads=4,
    head_dim=10,
    **text_kw,
  )
  cfg = transformers.PaliGemmaConfig(
    vision_config=vision, text_config=text, image_token_id=IMAGE_TOKEN, projection_dim=40
  )
  model = transformers.PaliGemmaForConditionalGeneration(cfg).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(torch.randn_like(p) * 0.3)
  return model


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
  text_kw, image_size, how = CASES[request.param]
  model = hf_paligemma_model(text_kw, image_size, seed=len(request.param))
  directory = tmp_path_factory.mktemp(request.param)
  if how == "bf16":
    model.to(torch.bfloat16).save_pretrained(directory)
    model = type(model).from_pretrained(directory, dtype=torch.float32).eval()
  elif how == "sharded":
    model.save_pretrained(directory, max_shard_size="20KB")
  else:
    model.save_pretrained(directory)
  config, params = hf_paligemma.load_hf_paligemma(str(directory))
  return request.param, model, str(directory), config, params


def _inputs(config, seed, batch=2, prompt=5, answer=4):
  rs = np.random.RandomState(seed)
  size = config.vision.image_size
  pixels = rs.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
  return pixels, rs.randint(3, 110, (batch, prompt)), rs.randint(3, 110, (batch, answer))


def _reference_logits(model, config, pixels, prompt, answer):
  n = config.num_image_tokens
  ids = np.concatenate([np.full((len(prompt), n), IMAGE_TOKEN), prompt, answer], 1)
  types = np.concatenate([np.zeros_like(ids[:, : n + prompt.shape[1]]), np.ones_like(answer)], 1)
  with torch.no_grad():
    return model(
      input_ids=torch.tensor(ids),
      pixel_values=torch.tensor(pixels),
      token_type_ids=torch.tensor(types),
      attention_mask=torch.ones(ids.shape, dtype=torch.long),
    ).logits.numpy()


def test_layout_and_architecture(case):
  name, _, directory, config, params = case
  files = os.listdir(directory)
  assert ("model.safetensors.index.json" in files) == name.endswith("sharded")
  assert config.text.version == (2 if name.startswith("pg2") else 1)
  assert config.text.prefix_attention == "full"
  assert config.vision.image_size in (28, 42) and config.num_image_tokens in (4, 9)
  assert params["image_projection"]["kernel"].shape == (32, 40)


def test_answer_logits_match_transformers(case):
  _, model, _, config, params = case
  pixels, prompt, answer = _inputs(config, seed=1)
  ref = _reference_logits(model, config, pixels, prompt, answer)
  start = np.zeros((2, 1), np.int64)
  out = paligemma.PaliGemma(config).apply(
    {"params": params},
    jnp.asarray(prompt, jnp.int32),
    jnp.asarray(np.concatenate([start, answer], 1), jnp.int32),
    images=jnp.asarray(pixels.transpose(0, 2, 3, 1)),
  )
  first = config.num_image_tokens + prompt.shape[1] - 1
  np.testing.assert_allclose(np.asarray(out), ref[:, first:], atol=1e-4, rtol=0)


def test_greedy_tokens_equal_generate_for_prompts_of_different_lengths(case):
  _, model, _, config, params = case
  pixels, prompt, _ = _inputs(config, seed=2)
  lengths = [5, 2]
  padded = np.zeros((2, 5), np.int32)
  for i, n in enumerate(lengths):
    padded[i, :n] = prompt[i, :n]
  ours = decoding.greedy_decode(
    paligemma.PaliGemma(config),
    params,
    padded,
    8,
    eos_id=config.text.eos_token_id,
    images=jnp.asarray(pixels.transpose(0, 2, 3, 1)),
  )
  n_img = config.num_image_tokens
  for i, n in enumerate(lengths):
    ids = torch.tensor(np.concatenate([np.full((n_img,), IMAGE_TOKEN), prompt[i, :n]])[None])
    with torch.no_grad():
      ref = model.generate(
        input_ids=ids,
        pixel_values=torch.tensor(pixels[i : i + 1]),
        token_type_ids=torch.zeros_like(ids),
        attention_mask=torch.ones_like(ids),
        max_new_tokens=8,
        do_sample=False,
        eos_token_id=config.text.eos_token_id,
        pad_token_id=0,
      )[0, ids.shape[1] :].tolist()
    ref = np.asarray(ref + [0] * (8 - len(ref)))[None]
    eos = config.text.eos_token_id
    assert decoding.trim_after_eos(np.asarray(ours[i : i + 1]), eos) == decoding.trim_after_eos(
      ref, eos
    )


def test_damaged_directories_are_refused_by_tensor_name(case, tmp_path):
  name, _, directory, config, _ = case
  if name.endswith("sharded"):
    pytest.skip("the single-file cases cover the rewrite below")
  tensors = safetensors_io.load_file(os.path.join(directory, "model.safetensors"))
  cfg = json.load(open(os.path.join(directory, "config.json")))

  def write(t, where):
    os.makedirs(where)
    safetensors_io.save_file(t, os.path.join(where, "model.safetensors"))
    json.dump(cfg, open(os.path.join(where, "config.json"), "w"))
    return str(where)

  bias = "multi_modal_projector.linear.bias"
  with pytest.raises(ValueError, match=f"missing '{bias}'"):
    hf_paligemma.load_hf_paligemma(
      write({k: v for k, v in tensors.items() if k != bias}, tmp_path / "a")
    )
  fc1 = "vision_tower.encoder.layers.1.mlp.fc1.weight"
  with pytest.raises(ValueError, match=f"'{fc1}' has shape"):
    hf_paligemma.load_hf_paligemma(write(dict(tensors, **{fc1: tensors[fc1][1:]}), tmp_path / "b"))
  with pytest.raises(ValueError, match="image_size: checkpoint 28, given 56"):
    hf_paligemma.load_hf_paligemma(
      directory, config.replace(vision=config.vision.replace(image_size=56))
    )


def _big_vision_layout(params, config):
  """The big_vision PaliGemma `.npz` layout (scanned layers, under 'params/'), written from a
  tree: what `adalink.convert.big_vision_paligemma` must read back."""
  t, v = config.text, config.vision
  stack = lambda fn: np.stack([fn(params[f"layers_{i}"]) for i in range(t.num_layers)])
  heads = lambda k, n: k.reshape(t.d_model, n, t.head_dim).transpose(1, 0, 2)
  llm = {
    "embedder/input_embedding": params["token_embedder"]["embedding"],
    "final_norm/scale": params["final_norm"]["scale"],
    "layers/attn/q_einsum/w": stack(
      lambda p: heads(p["attention"]["query"]["kernel"], t.num_heads)
    ),
    "layers/attn/kv_einsum/w": stack(
      lambda p: np.stack(
        [heads(p["attention"][n]["kernel"], t.num_kv_heads) for n in ("key", "value")]
      )
    ),
    "layers/attn/attn_vec_einsum/w": stack(
      lambda p: p["attention"]["out"]["kernel"].reshape(t.num_heads, t.head_dim, t.d_model)
    ),
    "layers/mlp/gating_einsum": stack(
      lambda p: np.stack([p["mlp"]["wi_0"]["kernel"], p["mlp"]["wi_1"]["kernel"]])
    ),
    "layers/mlp/linear": stack(lambda p: p["mlp"]["wo"]["kernel"]),
  }
  norms = ("pre_attention_norm", "pre_ffw_norm")
  if t.version == 2:
    norms += ("post_attention_norm", "post_ffw_norm")
  for norm in norms:
    llm[f"layers/{norm}/scale"] = stack(lambda p, n=norm: p[n]["scale"])
  vp = params["vit"]
  p, w, h, hd = v.patch_size, v.width, v.num_heads, v.head_dim
  blocks = lambda fn: np.stack([fn(vp["encoder"][f"layers_{i}"]) for i in range(v.depth)])
  img = {
    "embedding/kernel": vp["embedding"]["kernel"].reshape(p, p, v.num_channels, w),
    "embedding/bias": vp["embedding"]["bias"],
    "pos_embedding": vp["pos_embedding"][None],
    "Transformer/encoder_norm/scale": vp["encoder"]["encoder_norm"]["scale"],
    "Transformer/encoder_norm/bias": vp["encoder"]["encoder_norm"]["bias"],
    "head/kernel": params["image_projection"]["kernel"],
    "head/bias": params["image_projection"]["bias"],
  }
  enc = "Transformer/encoderblock/"
  for ours, theirs in (
    ("pre_attention_layer_norm", "LayerNorm_0"),
    ("pre_mlp_layer_norm", "LayerNorm_1"),
  ):
    for leaf in ("scale", "bias"):
      img[f"{enc}{theirs}/{leaf}"] = blocks(lambda b, o=ours, l=leaf: b[o][l])
  mha = f"{enc}MultiHeadDotProductAttention_0/"
  for n in ("query", "key", "value"):
    img[f"{mha}{n}/kernel"] = blocks(lambda b, n=n: b["attention"][n]["kernel"].reshape(w, h, hd))
    img[f"{mha}{n}/bias"] = blocks(lambda b, n=n: b["attention"][n]["bias"].reshape(h, hd))
  img[f"{mha}out/kernel"] = blocks(lambda b: b["attention"]["out"]["kernel"].reshape(h, hd, w))
  img[f"{mha}out/bias"] = blocks(lambda b: b["attention"]["out"]["bias"])
  for i, n in enumerate(("wi", "wo")):
    for leaf in ("kernel", "bias"):
      img[f"{enc}MlpBlock_0/Dense_{i}/{leaf}"] = blocks(lambda b, n=n, l=leaf: b["mlp"][n][l])
  out = {f"params/llm/{k}": np.asarray(a) for k, a in llm.items()}
  out.update({f"params/img/{k}": np.asarray(a) for k, a in img.items()})
  return out


def test_a_big_vision_npz_of_the_same_weights_gives_the_same_logits(case, tmp_path):
  from adalink.convert import big_vision_paligemma

  _, _, _, config, params = case
  np.savez(tmp_path / "pg.npz", **_big_vision_layout(params, config))
  loaded = big_vision_paligemma.load_big_vision_paligemma(str(tmp_path / "pg.npz"), config)
  pixels, prompt, answer = _inputs(config, seed=3)
  args = (
    jnp.asarray(prompt, jnp.int32),
    jnp.asarray(np.concatenate([np.zeros((2, 1)), answer], 1), jnp.int32),
  )
  images = jnp.asarray(pixels.transpose(0, 2, 3, 1))
  model = paligemma.PaliGemma(config)
  np.testing.assert_array_equal(
    np.asarray(model.apply({"params": loaded}, *args, images=images)),
    np.asarray(model.apply({"params": params}, *args, images=images)),
  )
  bad = _big_vision_layout(params, config)
  bad["params/llm/layers/mlp/linear"] = bad["params/llm/layers/mlp/linear"][:, 1:]
  np.savez(tmp_path / "bad.npz", **bad)
  with pytest.raises(ValueError, match="'params/llm/layers/mlp/linear' has shape"):
    big_vision_paligemma.load_big_vision_paligemma(str(tmp_path / "bad.npz"), config)
