"""Serving forms: folded AdaLink (many tasks in one batch at the base's cost), merged LoRA, and the
folded table file a T5 with a separate encoder table reads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adalink.experiments import serve
from adalink.models import t5
from adalink.peft import methods, serving
from adalink.train import decoding

CFG = t5.get_config("tiny", dropout_rate=0.0)


@pytest.fixture(scope="module")
def base_params():
  return t5.init_params(CFG, jax.random.PRNGKey(0))


def _trained(method_cfg, base_params, num_tasks=1, seed=3, scale=0.5):
  spec = methods.spec_from_config(method_cfg, CFG.d_model, num_tasks=num_tasks)
  model = methods.build_model(CFG, spec)
  variables = methods.init_variables(model, jax.random.PRNGKey(1), base_params)
  keys = iter(jax.random.split(jax.random.PRNGKey(seed), 64))
  variables["adapters"] = jax.tree_util.tree_map(
    lambda x: scale * jax.random.normal(next(keys), x.shape, x.dtype), variables["adapters"]
  )
  return model, variables


def _tokens(seed=0, b=6, length=10):
  rs = np.random.RandomState(seed)
  tokens = rs.randint(3, CFG.vocab_size, (b, length)).astype(np.int32)
  tokens[1, 6:] = 0
  tokens[4, 3:] = 0
  tokens[:, -1] = np.where(tokens[:, -2] > 0, 1, 0)
  return jnp.asarray(tokens)


def test_mixed_task_batch_equals_each_example_alone_with_its_adapter(base_params):
  model, variables = _trained(
    {"name": "adalink", "rank": 4, "per_task": True, "dropout_rate": 0.0}, base_params, 3
  )
  form = serving.serving_form(model, variables)
  assert form.form == "adalink folded" and form.num_tasks == 3
  tokens, task_id = _tokens(), jnp.asarray([2, 0, 1, 1, 0, 2], jnp.int32)
  mixed = np.asarray(
    decoding.greedy_decode(form.module, form.variables, tokens, 7, task_id=task_id)
  )
  alone = []
  for i in range(len(tokens)):
    # Each example alone, through the trained module (not folded) with its own task's adapter.
    out = decoding.greedy_decode(model, variables, tokens[i : i + 1], 7, task_id=task_id[i : i + 1])
    alone.append(np.asarray(out)[0])
  np.testing.assert_array_equal(mixed, np.stack(alone))
  # Not vacuous: the tasks' adapters give different outputs for the same input.
  same_input = jnp.tile(tokens[:1], (3, 1))
  per_task = decoding.greedy_decode(
    form.module, form.variables, same_input, 7, task_id=jnp.arange(3, dtype=jnp.int32)
  )
  assert len({tuple(r) for r in np.asarray(per_task)}) > 1


def test_folded_encoder_states_match_the_module(base_params):
  model, variables = _trained({"name": "adalink", "rank": 4, "dropout_rate": 0.0}, base_params)
  form = serving.serving_form(model, variables)
  tokens = _tokens(1)
  enc_module, mask_m = model.apply(variables, tokens, method="encode_for_decoder")
  enc_folded, mask_f = form.module.apply(form.variables, tokens, method="encode_for_decoder")
  np.testing.assert_array_equal(np.asarray(mask_m), np.asarray(mask_f))
  assert float(jnp.abs(enc_module - enc_folded).max()) < 1e-5
  base_enc, _ = t5.T5(CFG).apply({"params": base_params}, tokens, method="encode_for_decoder")
  assert float(jnp.abs(base_enc - enc_folded).max()) > 1e-2


def test_lora_is_served_merged_and_pt_as_the_module(base_params):
  model, variables = _trained({"name": "lora", "rank": 4, "alpha": 8.0}, base_params, scale=0.1)
  form = serving.serving_form(model, variables)
  assert form.form == "lora merged" and isinstance(form.module, t5.T5)
  tokens = _tokens(2)
  np.testing.assert_array_equal(
    np.asarray(decoding.greedy_decode(model, variables, tokens, 6)),
    np.asarray(decoding.greedy_decode(form.module, form.variables, tokens, 6)),
  )
  model, variables = _trained({"name": "pt", "num_prompts": 4}, base_params)
  assert serving.serving_form(model, variables).form == "pt module"
  with pytest.raises(ValueError, match="cannot serve folded: method 'pt'"):
    serving.serving_form(model, variables, fold=True)


def test_nonlinear_adalink_is_served_as_the_module(base_params):
  model, variables = _trained(
    {"name": "adalink", "rank": 4, "activation": "relu", "dropout_rate": 0.0}, base_params
  )
  assert serving.serving_form(model, variables).form == "adalink module"
  with pytest.raises(ValueError, match="activation 'relu' is not linear"):
    serving.serving_form(model, variables, fold=True)


def test_folded_table_file_is_what_a_separate_encoder_table_t5_reads(base_params, tmp_path):
  model, variables = _trained(
    {"name": "adalink", "rank": 4, "per_task": True, "dropout_rate": 0.0}, base_params, 2
  )
  tables = serving.folded_tables(variables["params"], variables["adapters"])
  path = serve.write_folded_tables(tables, str(tmp_path))
  with pytest.raises(FileExistsError):
    serve.write_folded_tables(tables, str(tmp_path))
  separate = t5.T5(CFG.replace(separate_encoder_embedding=True))
  tokens = _tokens(3)
  for task in range(2):
    params = {
      **base_params,
      "encoder_token_embedder": {"embedding": jnp.asarray(serve.read_folded_table(path, task))},
    }
    got = separate.apply({"params": params}, tokens, method="encode_for_decoder")[0]
    want = model.apply(
      variables, tokens, task_id=jnp.full((6,), task, jnp.int32), method="encode_for_decoder"
    )[0]
    assert float(jnp.abs(got - want).max()) < 1e-5
