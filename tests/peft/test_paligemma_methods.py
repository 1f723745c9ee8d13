"""The methods on a tiny PaliGemma: identity at init, one modality's adapter leaves the other's
embeddings bitwise alone, prompts land between the image tokens and the prompt, and only what a
method trains moves (the SigLIP tower never does), and a folded text table equals the text
adapter."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from adalink.models import paligemma
from adalink.peft import methods
from adalink.train import decoding
from adalink.train import step as step_lib

CFG = paligemma.get_config("tiny2", "tiny")
D, N = CFG.d_model, CFG.num_image_tokens
STREAMS = ("image", "text")


def _batch(seed=0, b=3, lin=6, ltgt=4):
  rs = np.random.RandomState(seed)
  enc = rs.randint(3, CFG.text.vocab_size, (b, lin)).astype(np.int32)
  enc[1, 3:] = 0
  tgt = rs.randint(3, CFG.text.vocab_size, (b, ltgt)).astype(np.int32)
  size = CFG.vision.image_size
  batch = dict(
    encoder_input_tokens=enc,
    decoder_input_tokens=np.concatenate([np.zeros((b, 1), np.int32), tgt[:, :-1]], 1),
    decoder_target_tokens=tgt,
    decoder_loss_weights=np.ones_like(tgt, np.float32),
    images=rs.uniform(-1, 1, (b, size, size, 3)).astype(np.float32),
  )
  return {k: jnp.asarray(v) for k, v in batch.items()}


@pytest.fixture(scope="module")
def base_params():
  return paligemma.init_params(CFG, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def base_logits(base_params):
  return paligemma.PaliGemma(CFG).apply({"params": base_params}, **step_lib.model_inputs(_batch()))


def _build(method_cfg, base_params, seed=1):
  spec = methods.spec_from_config(method_cfg, D, available_streams=STREAMS)
  model = methods.build_model(CFG, spec)
  return spec, model, methods.init_variables(model, jax.random.PRNGKey(seed), base_params)


def _randomise_adapters(variables, seed):
  leaves, treedef = jax.tree_util.tree_flatten(variables["adapters"])
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  noisy = [x + 0.3 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
  return {**variables, "adapters": treedef.unflatten(noisy)}


@pytest.mark.parametrize(
  "method_cfg",
  [
    {"name": "adalink", "rank": 4, "streams": STREAMS},
    {"name": "adalink", "rank": 8, "streams": STREAMS, "unified": True},
    {"name": "lora", "rank": 4},
    {"name": "ft"},
  ],
)
def test_every_method_starts_at_the_base_model(method_cfg, base_params, base_logits):
  _, model, variables = _build(method_cfg, base_params)
  logits = model.apply(variables, **step_lib.model_inputs(_batch()))
  np.testing.assert_array_equal(np.asarray(logits), np.asarray(base_logits))


@pytest.mark.parametrize("adapted", STREAMS)
def test_an_adapter_on_one_modality_leaves_the_other_bitwise_untouched(adapted, base_params):
  _, model, variables = _build({"name": "adalink", "rank": 4, "streams": (adapted,)}, base_params)
  variables = _randomise_adapters(variables, seed=2)
  b = _batch()
  emb, _ = model.apply(variables, b["encoder_input_tokens"], b["images"], method="embed_inputs")
  _, base_model, base_vars = _build({"name": "ft"}, base_params)
  base_emb, _ = base_model.apply(
    base_vars, b["encoder_input_tokens"], b["images"], method="embed_inputs"
  )
  parts = {"image": slice(0, N), "text": slice(N, None)}
  other = "text" if adapted == "image" else "image"
  np.testing.assert_array_equal(
    np.asarray(emb[:, parts[other]]), np.asarray(base_emb[:, parts[other]])
  )
  assert not np.allclose(
    np.asarray(emb[:, parts[adapted]]), np.asarray(base_emb[:, parts[adapted]])
  )


def test_prompts_sit_after_the_image_tokens(base_params):
  _, model, variables = _build({"name": "pt", "num_prompts": 3, "reparam_hidden": 8}, base_params)
  b = _batch()
  emb, mask = model.apply(variables, b["encoder_input_tokens"], b["images"], method="embed_inputs")
  _, base_model, base_vars = _build({"name": "ft"}, base_params)
  base_emb, _ = base_model.apply(
    base_vars, b["encoder_input_tokens"], b["images"], method="embed_inputs"
  )
  assert emb.shape[1] == base_emb.shape[1] + 3 and bool(mask[:, : N + 3].all())
  np.testing.assert_array_equal(np.asarray(emb[:, :N]), np.asarray(base_emb[:, :N]))
  np.testing.assert_array_equal(np.asarray(emb[:, N + 3 :]), np.asarray(base_emb[:, N:]))
  tokens = decoding.greedy_decode(
    model, variables, b["encoder_input_tokens"], 3, eos_id=-1, images=b["images"]
  )
  assert tokens.shape == (3, 3)


@pytest.mark.parametrize(
  "method_cfg",
  [
    {"name": "adalink", "rank": 4, "streams": STREAMS},
    {"name": "lora", "rank": 4},
    {"name": "ft"},
  ],
)
def test_only_trainable_leaves_move_and_siglip_stays_frozen(method_cfg, base_params):
  spec, model, variables = _build(method_cfg, base_params)
  trainable, frozen = methods.split_variables(spec, variables)
  assert "vit" not in trainable.get("params", {})
  optimizer = optax.adafactor(1e-2)
  opt_state = optimizer.init(trainable)
  step = jax.jit(step_lib.make_train_step(model, optimizer))
  new = trainable
  for i in range(2):
    new, opt_state, metrics = step(new, opt_state, frozen, _batch(seed=i), jax.random.PRNGKey(i))
  assert np.isfinite(float(metrics["loss"]))
  after = methods.merge_variables(new, frozen)
  flat = lambda v: {(c,) + p: x for c in v for p, x in traverse_util.flatten_dict(v[c]).items()}
  before_flat, after_flat = flat(variables), flat(after)
  for path, before in before_flat.items():
    moved = not np.array_equal(np.asarray(before), np.asarray(after_flat[path]))
    assert moved == methods.is_trainable(spec, path[0], path[1:]), path
    if path[:2] == ("params", "vit"):
      assert not moved


def test_a_folded_text_table_equals_the_text_adapter(base_params):
  """The text adapter folds into a separate input table (the output layer keeps the tied one);
  image tokens do not pass through a table, so only the image adapter stays a module."""
  from adalink.peft import adalink as adalink_lib

  method = {"name": "adalink", "rank": 4, "streams": ("text",), "dropout_rate": 0.0}
  _, model, variables = _build(method, base_params)
  variables = _randomise_adapters(variables, seed=5)
  node = variables["adapters"]["adalink"]["text"]
  table = base_params["token_embedder"]["embedding"]
  served = {
    **base_params,
    "input_embedder": {
      "embedding": adalink_lib.fold_into_embedding(table, node["down"][0], node["up"][0])
    },
  }
  served_cfg = CFG.replace(text=CFG.text.replace(separate_input_embedding=True))
  b = step_lib.model_inputs(_batch())
  np.testing.assert_allclose(
    np.asarray(paligemma.PaliGemma(served_cfg).apply({"params": served}, **b)),
    np.asarray(model.apply(variables, **b)),
    atol=1e-5,
  )
