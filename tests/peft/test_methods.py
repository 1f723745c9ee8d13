"""The four methods on a tiny T5: identity at init, folding/merging, per-task routing, what trains."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from adalink.models import t5
from adalink.peft import adalink as adalink_lib
from adalink.peft import lora as lora_lib
from adalink.peft import methods
from adalink.train import step as step_lib
from tests.peft import batches

CFG = t5.get_config("tiny", dropout_rate=0.0)
D = CFG.d_model


def _batch(seed=0, b=4, lin=9, ltgt=5, num_tasks=0):
  return batches.text_batch(CFG.vocab_size, seed, b, lin, ltgt, num_tasks)


@pytest.fixture(scope="module")
def base_params():
  return t5.init_params(CFG, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def base_logits(base_params):
  b = _batch()
  return t5.T5(CFG).apply({"params": base_params}, **step_lib.model_inputs(b))


def _build(method_cfg, base_params, num_tasks=1, seed=1):
  spec = methods.spec_from_config(method_cfg, D, num_tasks=num_tasks)
  model = methods.build_model(CFG, spec)
  variables = methods.init_variables(model, jax.random.PRNGKey(seed), base_params)
  return spec, model, variables


def _randomise(tree, seed, scale=0.3):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return treedef.unflatten(
    [scale * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
  )


@pytest.mark.parametrize(
  "method_cfg",
  [
    {"name": "adalink", "rank": 4},
    {"name": "adalink", "rank": 4, "per_task": True},
    {"name": "lora", "rank": 4},
    {"name": "lora", "rank": 2, "targets": ["query", "value"], "lora_decoder": True},
    {"name": "ft"},
  ],
)
def test_logits_equal_base_at_init(method_cfg, base_params, base_logits):
  tasks = 3 if method_cfg.get("per_task") else 1
  spec, model, variables = _build(method_cfg, base_params, num_tasks=tasks)
  b = _batch(num_tasks=3 if tasks > 1 else 0)
  logits = model.apply(variables, **step_lib.model_inputs(b))
  # Zero-initialised up-projections make the adapted model the base model, bit for bit.
  np.testing.assert_array_equal(np.asarray(logits), np.asarray(base_logits))
  if spec.name != "ft":
    assert methods.count_params(variables["adapters"]) > 0


def test_prompt_tuning_adds_n_positions_covered_by_the_mask(base_params):
  spec, model, variables = _build(
    {"name": "pt", "num_prompts": 7, "reparam_hidden": 16}, base_params
  )
  b = _batch()
  emb, mask = model.apply(variables, b["encoder_input_tokens"], method="embed_inputs")
  base_emb = t5.T5(CFG).apply({"params": base_params}, b["encoder_input_tokens"], method="embed")
  enc_len = b["encoder_input_tokens"].shape[1]
  assert emb.shape == (4, 7 + enc_len, D) and mask.shape == (4, 7 + enc_len)
  assert bool(mask[:, :7].all())
  np.testing.assert_array_equal(np.asarray(mask[:, 7:]), np.asarray(b["encoder_input_tokens"] != 0))
  # The text embeddings follow the prompt unchanged; only the prepended rows are new.
  np.testing.assert_array_equal(np.asarray(emb[:, 7:]), np.asarray(base_emb))
  # The same prompt for every example, and initialised from rows of the vocabulary table.
  np.testing.assert_array_equal(np.asarray(emb[0, :7]), np.asarray(emb[3, :7]))
  prompt = np.asarray(variables["adapters"]["prompt"]["prompt"])
  table = np.asarray(base_params["token_embedder"]["embedding"])
  assert all(np.any(np.all(table == row, axis=1)) for row in prompt)
  logits = model.apply(variables, **step_lib.model_inputs(b))
  assert logits.shape == (4, b["decoder_input_tokens"].shape[1], CFG.vocab_size)


def test_prompt_counts_report_reparameterisation_apart(base_params):
  spec = methods.spec_from_config({"name": "pt", "num_prompts": 64, "reparam_hidden": 16}, D)
  counts = methods.count_trainable(spec, methods.abstract_variables(methods.build_model(CFG, spec)))
  assert counts["prompt"] == 64 * D
  assert counts["reparam"] == D * 16 * 2 + 2 * D
  assert counts["trainable"] == counts["prompt"] + counts["reparam"]


@pytest.mark.parametrize("per_task", [False, True])
def test_folded_table_gives_adapted_logits(per_task, base_params):
  tasks = 3 if per_task else 1
  cfg = {"name": "adalink", "rank": 6, "dropout_rate": 0.0, "per_task": per_task}
  spec, model, variables = _build(cfg, base_params, num_tasks=tasks)
  variables["adapters"] = _randomise(variables["adapters"], seed=5)
  serving = t5.T5(CFG.replace(separate_encoder_embedding=True))
  for task in range(tasks):
    b = _batch(num_tasks=0)
    if per_task:
      b["task_id"] = jnp.full((4,), task, jnp.int32)
    adapted = model.apply(variables, **step_lib.model_inputs(b))
    folded = adalink_lib.folded_serving_params(base_params, variables["adapters"], task=task)
    served = serving.apply(
      {"params": folded}, **{k: v for k, v in step_lib.model_inputs(b).items() if k != "task_id"}
    )
    diff = float(jnp.abs(adapted - served).max())
    assert diff <= 1e-5, diff
    # Not vacuous: the randomised adapter really changed the output.
    assert (
      float(
        jnp.abs(
          adapted
          - t5.T5(CFG).apply(
            {"params": base_params},
            **{k: v for k, v in step_lib.model_inputs(b).items() if k != "task_id"},
          )
        ).max()
      )
      > 1e-2
    )


def test_fold_refuses_nonlinear_activation():
  with pytest.raises(ValueError, match="identity activation"):
    adalink_lib.fold_into_embedding(jnp.ones((5, 4)), jnp.ones((4, 2)), jnp.ones((2, 4)), "relu")


def test_lora_merge_gives_adapted_logits(base_params):
  spec, model, variables = _build(
    {"name": "lora", "rank": 4, "alpha": 8.0, "lora_decoder": True}, base_params
  )
  variables["adapters"] = _randomise(variables["adapters"], seed=6, scale=0.1)
  b = _batch()
  adapted = model.apply(variables, **step_lib.model_inputs(b))
  merged = lora_lib.merge_lora(base_params, variables["adapters"], spec.rank, spec.alpha)
  served = t5.T5(CFG).apply({"params": merged}, **step_lib.model_inputs(b))
  assert float(jnp.abs(adapted - served).max()) <= 1e-5
  base = t5.T5(CFG).apply({"params": base_params}, **step_lib.model_inputs(b))
  assert float(jnp.abs(adapted - base).max()) > 0.1, "randomised LoRA must change the output"
  layers_with_lora = lora_lib.lora_layers(variables["adapters"])
  assert "encoder/layers_0/attention/query" in layers_with_lora
  assert "decoder/layers_1/mlp/wo" in layers_with_lora


def test_lora_targets_default_to_encoder_attention_and_mlp(base_params):
  _, _, variables = _build({"name": "lora", "rank": 2}, base_params)
  got = set(lora_lib.lora_layers(variables["adapters"]))
  want = {
    f"encoder/layers_{i}/{blk}"
    for i in range(CFG.num_encoder_layers)
    for blk in (
      "attention/query",
      "attention/key",
      "attention/value",
      "attention/out",
      "mlp/wi_0",
      "mlp/wi_1",
      "mlp/wo",
    )
  }
  assert got == want


def test_mixed_task_batch_routes_each_example_to_its_task(base_params):
  spec, model, variables = _build(
    {"name": "adalink", "rank": 4, "per_task": True}, base_params, num_tasks=3
  )
  variables["adapters"] = _randomise(variables["adapters"], seed=7)
  b = _batch(b=6, num_tasks=3)
  mixed = model.apply(variables, **step_lib.model_inputs(b))
  for i in range(6):
    one = {k: v[i : i + 1] for k, v in b.items()}
    alone = model.apply(variables, **step_lib.model_inputs(one))
    np.testing.assert_allclose(np.asarray(mixed[i]), np.asarray(alone[0]), atol=1e-5)
  # Routing matters: the same example under another task's adapter differs.
  other = {k: v[:1] for k, v in b.items()}
  other["task_id"] = jnp.array([1], jnp.int32)
  assert (
    float(jnp.abs(model.apply(variables, **step_lib.model_inputs(other))[0] - mixed[0]).max())
    > 1e-3
  )


def test_unified_adapter_count_equals_two_modality_adapters():
  # At PaLI-X width: two rank-64 adapters and one unified rank-128 adapter both hold 1,048,576.
  two = methods.MethodSpec(name="adalink", rank=64, streams=("text", "image"))
  one = methods.MethodSpec(name="adalink", rank=128, streams=("text", "image"), unified=True)
  x = {"text": jnp.zeros((1, 2, 4096)), "image": jnp.zeros((1, 3, 4096))}
  count = lambda spec: methods.count_params(
    jax.eval_shape(lambda: methods.InputAdapters(spec).init(jax.random.PRNGKey(0), x))
  )
  assert count(two) == count(one) == 1_048_576


@pytest.mark.parametrize(
  "method_cfg",
  [
    {"name": "adalink", "rank": 4},
    {"name": "lora", "rank": 4},
    {"name": "pt", "num_prompts": 4, "reparam_hidden": 8},
    {"name": "ft"},
  ],
)
def test_only_trainable_leaves_move_and_hold_optimizer_state(method_cfg, base_params):
  spec, model, variables = _build(method_cfg, base_params)
  trainable, frozen = methods.split_variables(spec, variables)
  optimizer = optax.adafactor(1e-2)
  opt_state = optimizer.init(trainable)
  step = jax.jit(step_lib.make_train_step(model, optimizer))
  new_trainable = trainable
  for i in range(3):
    new_trainable, opt_state, metrics = step(
      new_trainable, opt_state, frozen, _batch(seed=i), jax.random.PRNGKey(i)
    )
  assert np.isfinite(float(metrics["loss"]))
  # Frozen leaves are not even state of the step; check they equal the originals bitwise.
  after = methods.merge_variables(new_trainable, frozen)
  flat_before = {
    (c,) + p: v for c in variables for p, v in traverse_util.flatten_dict(variables[c]).items()
  }
  flat_after = {(c,) + p: v for c in after for p, v in traverse_util.flatten_dict(after[c]).items()}
  assert flat_before.keys() == flat_after.keys()
  for path, before in flat_before.items():
    moved = not np.array_equal(np.asarray(before), np.asarray(flat_after[path]))
    trains = methods.is_trainable(spec, path[0], path[1:])
    assert moved == trains, (path, "moved" if moved else "unchanged")
  # Optimiser state covers exactly the trainable leaves: same tree structure as the params.
  opt_paths = set()
  for path, _ in jax.tree_util.tree_flatten_with_path(opt_state)[0]:
    keys = tuple(getattr(k, "key", None) for k in path)
    opt_paths.add(tuple(k for k in keys if k is not None))
  trainable_paths = {(c,) + p for c in trainable for p in traverse_util.flatten_dict(trainable[c])}
  frozen_paths = {(c,) + p for c in frozen for p in traverse_util.flatten_dict(frozen[c])}
  assert any(any(p[: len(t)] == t for t in trainable_paths) for p in opt_paths)
  for p in opt_paths:
    assert not any(p[: len(f)] == f or p[-len(f) :] == f for f in frozen_paths), p


@pytest.mark.parametrize(
  "method_cfg, message",
  [
    ({"name": "prefix"}, "method.name: unknown method 'prefix'"),
    (
      {"name": "adalink", "rank": 0},
      "method.rank must be an integer in \\[1, d_model=32\\], got 0",
    ),
    ({"name": "adalink", "rank": -3}, "got -3"),
    ({"name": "adalink", "rank": 33}, "got 33"),
    ({"name": "lora", "rank": 64}, "d_model=32\\], got 64"),
    (
      {"name": "adalink", "rank": 4, "streams": ["audio"]},
      "method.streams: unknown stream 'audio'",
    ),
    (
      {"name": "lora", "rank": 4, "targets": ["query", "qkv"]},
      "method.targets: unknown target 'qkv'",
    ),
    ({"name": "adalink", "rank": 4, "rnak": 8}, "method.rnak: not a field of method 'adalink'"),
    ({"name": "adalink", "rank": 4, "per_task": True}, "method.per_task needs a mixture"),
    ({"name": "adalink", "rank": 4, "activation": "swish2"}, "method.activation"),
    ({"name": "pt", "num_prompts": 0}, "method.num_prompts must be a positive integer, got 0"),
    ({"name": "pt", "prompt_init": "zeros"}, "method.prompt_init"),
  ],
)
def test_bad_method_configs_fail_before_compilation(method_cfg, message, monkeypatch):
  # Any trace or compile would go through jax.jit / eval_shape; make them explode.
  monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled"))
  monkeypatch.setattr(jax, "eval_shape", lambda *a, **k: pytest.fail("traced"))
  with pytest.raises(ValueError, match=message):
    methods.spec_from_config(method_cfg, D)


@pytest.mark.parametrize(
  "method_cfg, num_tasks, message",
  [
    ({"name": "pt", "num_prompts": 2}, 1, "prompt tuning does not support packed inputs"),
    (
      {"name": "adalink", "rank": 4, "per_task": True},
      3,
      "per-task AdaLink needs one task per row",
    ),
    ({"name": "adalink", "rank": 4}, 1, None),
  ],
)
def test_packed_rows_are_refused_by_methods_that_need_one_example_per_row(
  method_cfg, num_tasks, message, base_params
):
  _, model, variables = _build(method_cfg, base_params, num_tasks=num_tasks)
  b = step_lib.model_inputs(_batch(num_tasks=num_tasks if num_tasks > 1 else 0))
  ones = lambda x: jnp.ones_like(x, jnp.int32)
  packed = dict(
    b,
    encoder_segment_ids=ones(b["encoder_input_tokens"]),
    decoder_segment_ids=ones(b["decoder_input_tokens"]),
  )
  if message is None:
    assert model.apply(variables, **packed).shape[:2] == b["decoder_input_tokens"].shape
  else:
    with pytest.raises(ValueError, match=message):
      model.apply(variables, **packed)
