"""The methods on a tiny decoder-only Gemma: identity at init, folded = module (continuation
included), per-task routing while decoding, prompts before the prefix, what trains."""

import jax
import numpy as np
import optax
import pytest
from flax import traverse_util

from adalink.models import gemma, gemma_config
from adalink.peft import adalink as adalink_lib
from adalink.peft import methods
from adalink.train import decoding
from adalink.train import step as step_lib
from tests.peft import batches

CFG = gemma_config.get_config("tiny2")
D = CFG.d_model


def _batch(seed=0, b=4, lin=9, ltgt=5, num_tasks=0):
  return batches.text_batch(CFG.vocab_size, seed, b, lin, ltgt, num_tasks)


@pytest.fixture(scope="module")
def base_params():
  return gemma.init_params(CFG, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def base_logits(base_params):
  return gemma.Gemma(CFG).apply({"params": base_params}, **step_lib.model_inputs(_batch()))


def _build(method_cfg, base_params, num_tasks=1, seed=1):
  spec = methods.spec_from_config(method_cfg, D, num_tasks=num_tasks)
  model = methods.build_model(CFG, spec)
  variables = methods.init_variables(model, jax.random.PRNGKey(seed), base_params)
  return spec, model, variables


def _randomise_adapters(variables, seed, scale=0.3):
  leaves, treedef = jax.tree_util.tree_flatten(variables["adapters"])
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  noisy = [x + scale * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
  return {**variables, "adapters": treedef.unflatten(noisy)}


@pytest.mark.parametrize(
  "method_cfg",
  [
    {"name": "adalink", "rank": 4},
    {"name": "adalink", "rank": 4, "per_task": True},
    {"name": "lora", "rank": 4},
    {"name": "ft"},
  ],
)
def test_logits_equal_base_at_init(method_cfg, base_params, base_logits):
  tasks = 3 if method_cfg.get("per_task") else 1
  spec, model, variables = _build(method_cfg, base_params, num_tasks=tasks)
  logits = model.apply(variables, **step_lib.model_inputs(_batch(num_tasks=3 if tasks > 1 else 0)))
  np.testing.assert_array_equal(np.asarray(logits), np.asarray(base_logits))
  if spec.name != "ft":
    assert methods.count_params(variables["adapters"]) > 0


def test_folded_input_table_equals_the_module_in_training_and_decoding(base_params):
  """Gemma ties its input and output tables, so the fold goes to a separate input table; the
  module adapts the continuation's tokens too, so both forms agree on every logit."""
  spec, model, variables = _build({"name": "adalink", "rank": 4, "dropout_rate": 0.0}, base_params)
  variables = _randomise_adapters(variables, seed=3)
  node = variables["adapters"]["adalink"]["text"]
  table = base_params["token_embedder"]["embedding"]
  folded = adalink_lib.fold_into_embedding(table, node["down"][0], node["up"][0])
  served_cfg = CFG.replace(separate_input_embedding=True)
  served = {**base_params, "input_embedder": {"embedding": folded}}
  b = _batch()
  module_logits = model.apply(variables, **step_lib.model_inputs(b))
  folded_logits = gemma.Gemma(served_cfg).apply({"params": served}, **step_lib.model_inputs(b))
  np.testing.assert_allclose(np.asarray(folded_logits), np.asarray(module_logits), atol=1e-5)
  assert not np.allclose(
    np.asarray(module_logits),
    np.asarray(gemma.Gemma(CFG).apply({"params": base_params}, **step_lib.model_inputs(b))),
    atol=1e-3,
  )
  prompts = b["encoder_input_tokens"]
  from_module = decoding.greedy_decode(model, variables, prompts, 6, eos_id=-1)
  from_table = decoding.greedy_decode(gemma.Gemma(served_cfg), served, prompts, 6, eos_id=-1)
  np.testing.assert_array_equal(np.asarray(from_module), np.asarray(from_table))


def test_per_task_adapters_follow_each_example_while_decoding(base_params):
  spec, model, variables = _build(
    {"name": "adalink", "rank": 4, "per_task": True, "dropout_rate": 0.0}, base_params, 3
  )
  variables = _randomise_adapters(variables, seed=4, scale=1.0)
  b = _batch(num_tasks=3)
  mixed = decoding.greedy_decode(
    model, variables, b["encoder_input_tokens"], 6, eos_id=-1, task_id=b["task_id"]
  )
  for i in range(4):
    alone = decoding.greedy_decode(
      model,
      variables,
      b["encoder_input_tokens"][i : i + 1],
      6,
      eos_id=-1,
      task_id=b["task_id"][i : i + 1],
    )
    np.testing.assert_array_equal(np.asarray(mixed[i]), np.asarray(alone[0]))
  other = decoding.greedy_decode(
    model, variables, b["encoder_input_tokens"], 6, eos_id=-1, task_id=(b["task_id"] + 1) % 3
  )
  assert not np.array_equal(np.asarray(mixed), np.asarray(other))


def test_prompts_go_before_the_prefix_and_leave_its_embeddings_alone(base_params):
  spec, model, variables = _build(
    {"name": "pt", "num_prompts": 5, "reparam_hidden": 8}, base_params
  )
  b = _batch()
  emb, mask = model.apply(variables, b["encoder_input_tokens"], method="embed_inputs")
  base_emb = gemma.Gemma(CFG).apply(
    {"params": base_params}, b["encoder_input_tokens"], method="embed"
  )
  assert emb.shape[1] == 5 + b["encoder_input_tokens"].shape[1]
  assert bool(mask[:, :5].all())
  np.testing.assert_array_equal(np.asarray(emb[:, 5:]), np.asarray(base_emb))
  tokens = decoding.greedy_decode(model, variables, b["encoder_input_tokens"], 4, eos_id=-1)
  assert tokens.shape == (4, 4)


@pytest.mark.parametrize(
  "method_cfg",
  [
    {"name": "adalink", "rank": 4},
    {"name": "lora", "rank": 4},
    {"name": "pt", "num_prompts": 4, "reparam_hidden": 8},
    {"name": "ft"},
  ],
)
def test_only_trainable_leaves_move(method_cfg, base_params):
  spec, model, variables = _build(method_cfg, base_params)
  trainable, frozen = methods.split_variables(spec, variables)
  optimizer = optax.adafactor(1e-2)
  opt_state = optimizer.init(trainable)
  step = jax.jit(step_lib.make_train_step(model, optimizer))
  new = trainable
  for i in range(3):
    new, opt_state, metrics = step(new, opt_state, frozen, _batch(seed=i), jax.random.PRNGKey(i))
  assert np.isfinite(float(metrics["loss"]))
  after = methods.merge_variables(new, frozen)
  flat = lambda v: {(c,) + p: x for c in v for p, x in traverse_util.flatten_dict(v[c]).items()}
  before_flat, after_flat = flat(variables), flat(after)
  assert before_flat.keys() == after_flat.keys()
  for path, before in before_flat.items():
    moved = not np.array_equal(np.asarray(before), np.asarray(after_flat[path]))
    assert moved == methods.is_trainable(spec, path[0], path[1:]), path


def test_placement_is_refused_on_the_decoder_only_model():
  spec = methods.spec_from_config({"name": "placement", "rank": 2, "edges": [[0, 0]]}, D)
  with pytest.raises(ValueError, match="not available on the decoder-only Gemma"):
    methods.build_model(CFG, spec)
