"""Methods on the PaLI-style image+text model: modality isolation, identity at init, what trains."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adalink.models import pali, t5, vit
from adalink.peft import methods
from adalink.peft.multimodal import MODALITY_STREAMS, PeftPaLI

CONFIG = pali.PaLIConfig(t5.get_config("tiny", dropout_rate=0.0), vit.get_config("tiny"))
N_IMG = CONFIG.num_image_tokens


def _inputs(seed=0, b=3):
  rs = np.random.RandomState(seed)
  enc = rs.randint(3, CONFIG.text.vocab_size, (b, 6)).astype(np.int32)
  enc[1, 4:] = 0
  dec = rs.randint(3, CONFIG.text.vocab_size, (b, 4)).astype(np.int32)
  images = rs.uniform(-1, 1, (b, 32, 32, 3)).astype(np.float32)
  return dict(
    encoder_input_tokens=jnp.asarray(enc),
    decoder_input_tokens=jnp.asarray(dec),
    images=jnp.asarray(images),
  )


@pytest.fixture(scope="module")
def base_params():
  return pali.init_params(CONFIG, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def base_embeddings(base_params):
  x = _inputs()
  model = pali.PaLI(CONFIG)
  image = model.apply({"params": base_params}, x["images"], method="embed_image")
  text = model.apply({"params": base_params}, x["encoder_input_tokens"], method="embed")
  return np.asarray(image), np.asarray(text)


def _build(cfg, base_params, seed=1):
  spec = methods.spec_from_config(cfg, CONFIG.d_model, available_streams=MODALITY_STREAMS)
  model = PeftPaLI(CONFIG, spec)
  return spec, model, methods.init_variables(model, jax.random.PRNGKey(seed), base_params)


def _randomise(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return treedef.unflatten([0.3 * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])


@pytest.mark.parametrize("trained", ["text", "image"])
def test_an_adapter_on_one_modality_leaves_the_other_bitwise_untouched(
  trained, base_params, base_embeddings
):
  _, model, variables = _build(
    {"name": "adalink", "rank": 4, "streams": ["image", "text"], "dropout_rate": 0.0}, base_params
  )
  ad = variables["adapters"]["adalink"]
  ad[trained] = _randomise(ad[trained], seed=3)
  x = _inputs()
  emb, mask = model.apply(variables, x["encoder_input_tokens"], x["images"], method="embed_inputs")
  emb = np.asarray(emb)
  image, text = base_embeddings
  assert emb.shape[1] == N_IMG + text.shape[1] and bool(mask[:, :N_IMG].all())
  if trained == "text":
    np.testing.assert_array_equal(emb[:, :N_IMG], image)  # bitwise: the image never moved
    assert np.abs(emb[:, N_IMG:] - text).max() > 1e-2
  else:
    np.testing.assert_array_equal(emb[:, N_IMG:], text)
    assert np.abs(emb[:, :N_IMG] - image).max() > 1e-2


def test_text_only_adalink_never_touches_image_tokens(base_params, base_embeddings):
  _, model, variables = _build({"name": "adalink", "rank": 4, "streams": ["text"]}, base_params)
  assert set(variables["adapters"]["adalink"]) == {"text"}
  variables["adapters"] = _randomise(variables["adapters"], seed=4)
  x = _inputs()
  emb, _ = model.apply(variables, x["encoder_input_tokens"], x["images"], method="embed_inputs")
  np.testing.assert_array_equal(np.asarray(emb)[:, :N_IMG], base_embeddings[0])


def test_unified_adapter_is_one_module_over_both_streams(base_params):
  _, _, variables = _build(
    {"name": "adalink", "rank": 8, "streams": ["image", "text"], "unified": True}, base_params
  )
  assert set(variables["adapters"]["adalink"]) == {"unified"}
  assert variables["adapters"]["adalink"]["unified"]["down"].shape == (1, CONFIG.d_model, 8)


@pytest.mark.parametrize(
  "cfg",
  [
    {"name": "adalink", "rank": 4, "streams": ["image", "text"]},
    {"name": "adalink", "rank": 8, "streams": ["image", "text"], "unified": True},
    {"name": "lora", "rank": 4},
    {"name": "ft"},
  ],
)
def test_every_method_starts_at_the_base_model(cfg, base_params):
  _, model, variables = _build(cfg, base_params)
  x = _inputs()
  base = pali.PaLI(CONFIG).apply({"params": base_params}, **x)
  np.testing.assert_array_equal(np.asarray(model.apply(variables, **x)), np.asarray(base))


def test_prompts_go_after_the_image_tokens(base_params, base_embeddings):
  _, model, variables = _build({"name": "pt", "num_prompts": 5}, base_params)
  x = _inputs()
  emb, mask = model.apply(variables, x["encoder_input_tokens"], x["images"], method="embed_inputs")
  emb = np.asarray(emb)
  image, text = base_embeddings
  np.testing.assert_array_equal(emb[:, :N_IMG], image)  # image positions 0..N-1 unchanged
  np.testing.assert_array_equal(emb[:, N_IMG + 5 :], text)
  prompt = np.asarray(variables["adapters"]["prompt"]["prompt"])
  np.testing.assert_array_equal(emb[0, N_IMG : N_IMG + 5], prompt)
  assert bool(mask[:, : N_IMG + 5].all())
  np.testing.assert_array_equal(
    np.asarray(mask[:, N_IMG + 5 :]), np.asarray(x["encoder_input_tokens"] != 0)
  )


def test_full_fine_tuning_keeps_the_vit_frozen(base_params):
  spec, _, variables = _build({"name": "ft"}, base_params)
  trainable, frozen = methods.split_variables(spec, variables)
  assert "vit" in frozen["params"] and "vit" not in trainable["params"]
  assert {"image_projection", "encoder", "decoder", "token_embedder"} <= set(trainable["params"])


def test_image_stream_refused_on_a_text_only_model():
  with pytest.raises(ValueError, match="method.streams: unknown stream 'image'"):
    methods.spec_from_config({"name": "adalink", "rank": 4, "streams": ["image"]}, 32)


def test_counts_at_pali_x_width_from_the_full_model():
  # A PaLI-X-width language model (d 4096) with a So400m/14 tower, counted from shapes alone.
  config = pali.PaLIConfig(t5.get_config("xxl"), vit.get_config("So400m/14"))
  for cfg, want in (
    ({"name": "adalink", "rank": 64, "streams": ["image", "text"]}, 1_048_576),
    ({"name": "adalink", "rank": 128, "streams": ["image", "text"], "unified": True}, 1_048_576),
    ({"name": "pt", "num_prompts": 64}, 262_144),
  ):
    spec = methods.spec_from_config(cfg, config.d_model, available_streams=MODALITY_STREAMS)
    counts = methods.count_trainable(spec, methods.abstract_variables(PeftPaLI(config, spec)))
    assert counts.get("prompt", counts["trainable"]) == want


def test_placement_is_refused_on_the_image_text_model_before_tracing(monkeypatch):
  monkeypatch.setattr(jax, "eval_shape", lambda *a, **k: pytest.fail("traced"))
  spec = methods.spec_from_config(
    {"name": "placement", "rank": 4, "edges": [(0, 0)]}, CONFIG.d_model, num_encoder_layers=2
  )
  message = (
    r"config.method.name='placement' is not available on the image\+text model "
    r"\(model.kind='pali'\): it needs the encoder node hook.*methods available there: "
  )
  for model in (CONFIG, PeftPaLI(CONFIG, spec)):
    with pytest.raises(ValueError, match=message):
      methods.check_supported(spec, model)
  with pytest.raises(ValueError, match=message):
    methods.build_model(CONFIG, spec)
  # The same spec fits the text T5 (which exposes the node hook); the wrapper follows the config.
  methods.check_supported(spec, CONFIG.text)
  assert isinstance(methods.build_model(CONFIG.text, spec), methods.PeftT5)
  available = methods.supported_methods(CONFIG)
  assert {"adalink", "ft", "lora", "pt"} <= set(available) and "placement" not in available


def test_a_spec_for_other_streams_is_refused_by_the_model_it_does_not_fit():
  spec = methods.spec_from_config(
    {"name": "adalink", "rank": 4, "streams": ["image", "text"]},
    CONFIG.d_model,
    available_streams=MODALITY_STREAMS,
  )
  assert isinstance(methods.build_model(CONFIG, spec), PeftPaLI)
  with pytest.raises(ValueError, match=r"method.streams: unknown stream 'image'; this model has"):
    methods.build_model(CONFIG.text, spec)
