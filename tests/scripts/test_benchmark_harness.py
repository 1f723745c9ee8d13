"""The benchmark compares like with like: same model on both sides, fair timing order."""

import flax.linen as nn
import jax
import pytest

from adalink.bench import jax_side, timing, torch_side
from adalink.bench.options import BenchmarkOptions
from adalink.models import t5
from adalink.peft import methods


def test_pytorch_reference_has_the_same_weights_as_the_jax_model():
  pytest.importorskip("transformers")
  cfg, model = torch_side.torch_model(BenchmarkOptions(size="tiny"))
  jax_count = methods.count_params(
    jax.eval_shape(lambda: t5.init_params(cfg, jax.random.PRNGKey(0)))
  )
  # v1.1 sizes have their own output layer: transformers 5 would share the token table instead.
  assert not cfg.tie_word_embeddings
  assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
  assert sum(p.numel() for p in model.parameters()) == jax_count


def test_pytorch_prompt_tuning_prompts_only_the_encoder():
  peft = pytest.importorskip("peft")
  if getattr(peft, "__file__", None) is None:  # tests/peft seen as a namespace package
    pytest.skip("peft is not installed (pip install -e .[bench])")
  _, model = torch_side.torch_model(BenchmarkOptions(size="tiny"))
  model = torch_side.torch_peft(model, "pt", None, 5)
  trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
  assert trainable == 5 * t5.get_config("tiny").d_model


def test_interleaved_timing_runs_every_function_once_per_round():
  calls = []
  fns = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "a#2")}
  times = timing.interleaved(fns, n=3, warmup=1, sync=lambda x: None)
  rounds = [calls[i : i + 3] for i in range(0, len(calls), 3)]
  assert len(rounds) == 4 and all(sorted(r) == ["a", "a#2", "b"] for r in rounds)
  assert len({tuple(r) for r in rounds}) > 1  # shuffled: no variant always follows the same one
  assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "a#2": 3}


def test_random_variables_fill_every_leaf_with_the_models_shapes():
  cfg = t5.get_config("tiny")
  spec = methods.spec_from_config({"name": "adalink", "rank": 2}, cfg.d_model)
  model = methods.build_model(cfg, spec)
  got = jax_side.random_variables(model, 0)
  shapes = lambda tree: jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), tree)
  assert shapes(got) == shapes(nn.unbox(methods.abstract_variables(model)))
  # Every adapter leaf is drawn (not left at a zero init that a sparse kernel could exploit).
  assert all(float(abs(x).max()) > 0 for x in jax.tree_util.tree_leaves(got["adapters"]))


def test_ratio_interval_tells_noise_from_a_real_slowdown():
  rng = __import__("numpy").random.default_rng(1)
  base = list(0.1 + 0.01 * rng.standard_normal(20))
  twin = list(0.1 + 0.01 * rng.standard_normal(20))  # same cost, own noise
  ratio, lo, hi = timing.ratio_interval(twin, base)
  assert lo <= 1 <= hi and lo < ratio < hi
  slower = [1.5 * t for t in twin]
  ratio, lo, hi = timing.ratio_interval(slower, base)
  assert 1.3 < lo < ratio < hi
  # Paired resampling: a drift that hits both variants in the same rounds cancels in the ratio.
  drift = [1 + 0.5 * i for i in range(20)]
  assert timing.ratio_interval([d * 0.1 for d in drift], [d * 0.1 for d in drift])[1:] == (1, 1)
