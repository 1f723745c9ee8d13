"""Scanned T5 layers (with and without remat) compute what the unrolled ones do, and parameter
trees convert between the two layouts without loss."""

import jax
import jax.numpy as jnp
import numpy as np
import flax.linen as nn
import pytest

from adalink.models import layer_stack, layers, t5
from adalink.train import decoding

ENC = jnp.array([[5, 6, 7, 9, 1, 0], [4, 3, 1, 0, 0, 0]], jnp.int32)
DEC = jnp.array([[0, 8, 9, 1], [0, 2, 1, 0]], jnp.int32)
TGT = jnp.array([[8, 9, 1, 0], [2, 1, 0, 0]], jnp.int32)


@pytest.fixture(scope="module")
def unrolled():
  cfg = t5.get_config("tiny", dropout_rate=0.0, num_encoder_layers=3, num_decoder_layers=2)
  return cfg, t5.init_params(cfg, jax.random.PRNGKey(0))


def _loss_and_grads(cfg, params):
  def loss(p):
    logits = t5.T5(cfg).apply({"params": p}, ENC, DEC, TGT)
    logp = jnp.take_along_axis(jax.nn.log_softmax(logits), TGT[..., None], -1)[..., 0]
    return -(logp * (TGT != 0)).sum(), logits

  (value, logits), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
  return value, logits, grads


@pytest.mark.parametrize("remat", ["none", "full"])
def test_scanned_logits_loss_and_gradients_equal_the_unrolled_ones(unrolled, remat):
  cfg, params = unrolled
  value, logits, grads = _loss_and_grads(cfg, params)
  s_value, s_logits, s_grads = _loss_and_grads(
    cfg.replace(scan_layers=True, remat=remat), layer_stack.stack_layers(params)
  )
  np.testing.assert_allclose(s_value, value, rtol=1e-6)
  np.testing.assert_allclose(s_logits, logits, atol=1e-5)
  for (path, g), s in zip(
    jax.tree_util.tree_leaves_with_path(grads),
    jax.tree_util.tree_leaves(layer_stack.unstack_layers(s_grads)),
  ):
    np.testing.assert_allclose(s, g, atol=1e-5, err_msg=jax.tree_util.keystr(path))


def test_the_scanned_tree_is_the_stacked_unrolled_one_with_a_layers_axis(unrolled):
  cfg, params = unrolled
  boxed = t5.abstract_params(cfg.replace(scan_layers=True))["params"]
  query = boxed["encoder"]["layers"]["attention"]["query"]["kernel"]
  assert query.names == ("layers", "embed", "joined_kv")
  assert (
    query.value.shape == (3,) + params["encoder"]["layers_0"]["attention"]["query"]["kernel"].shape
  )
  stacked = layer_stack.stack_layers(params)
  assert jax.tree_util.tree_structure(stacked) == jax.tree_util.tree_structure(nn.unbox(boxed))
  assert layer_stack.is_scanned(stacked) and not layer_stack.is_scanned(params)
  back = layer_stack.unstack_layers(stacked)
  assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(params)
  for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(params)):
    np.testing.assert_array_equal(a, b)


def test_lora_adapters_stack_with_their_layers():
  lora = layers.LoraSpec(rank=2, alpha=4.0, targets=("query", "value"))
  cfg = t5.get_config("tiny", dropout_rate=0.0)
  unrolled = nn.unbox(t5.abstract_params(cfg, lora))
  scanned = nn.unbox(t5.abstract_params(cfg.replace(scan_layers=True), lora))
  assert scanned["adapters"]["encoder"]["layers"]["attention"]["query"]["lora_a"].shape[0] == 2
  stacked = jax.eval_shape(layer_stack.stack_layers, unrolled)
  assert jax.tree_util.tree_map(lambda x: x.shape, stacked) == jax.tree_util.tree_map(
    lambda x: x.shape, scanned
  )


def test_greedy_and_beam_decoding_read_the_scanned_cache(unrolled):
  cfg, params = unrolled
  model, s_model = t5.T5(cfg), t5.T5(cfg.replace(scan_layers=True))
  s_params = layer_stack.stack_layers(params)
  np.testing.assert_array_equal(
    decoding.greedy_decode(s_model, s_params, ENC, 6), decoding.greedy_decode(model, params, ENC, 6)
  )
  np.testing.assert_array_equal(
    decoding.beam_search(s_model, s_params, ENC, 6, beam_size=3),
    decoding.beam_search(model, params, ENC, 6, beam_size=3),
  )


def test_bad_settings_and_trees_are_refused_with_their_names():
  with pytest.raises(ValueError, match="T5Config.remat.*'sometimes'"):
    t5.get_config("tiny", remat="sometimes")
  with pytest.raises(ValueError, match="numbered 0..1"):
    layer_stack.stack_layers(
      {"encoder": {"layers_0": {"w": jnp.ones(2)}, "layers_2": {"w": jnp.ones(2)}}}
    )
  with pytest.raises(ValueError, match="variables differ"):
    layer_stack.stack_layers(
      {"encoder": {"layers_0": {"w": jnp.ones(2)}, "layers_1": {"v": jnp.ones(2)}}}
    )


def test_a_node_hook_on_scanned_layers_is_refused():
  cfg = t5.get_config("tiny", scan_layers=True)
  params = t5.init_params(cfg, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="scan_layers=False"):
    t5.T5(cfg).apply(
      {"params": params},
      jnp.zeros((1, 4, cfg.d_model)),
      jnp.ones((1, 4), bool),
      node_hook=lambda node, h: h,
      method="encode_embedded",
    )


def test_a_checkpoint_loads_stacked_into_a_scanned_model(unrolled, tmp_path):
  import ml_collections

  from adalink.convert import hf_t5
  from adalink.train.model_families import t5 as t5_family

  cfg, params = unrolled
  hf_t5.save_hf_t5(cfg, params, str(tmp_path / "hf"))
  config = ml_collections.ConfigDict({"model": {"size": "tiny", "init_seed": 0}})
  loaded = t5_family.load_text_params(config, cfg.replace(scan_layers=True), str(tmp_path / "hf"))
  want = layer_stack.stack_layers(params)
  assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(want)
  for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(want)):
    np.testing.assert_array_equal(a, b)
