"""The method layer grows by registration: a method defined in this file alone validates its own
config field, starts at the base model, and trains through `train_and_evaluate`.

The toy method `toy_scale` learns a per-channel scale `s` on the input text embeddings
(`E * s`, `s` in the `adapters` collection at `adapters/toy_scale/scale`, initialised to
`method.init_scale`, which must be a number > 0). It reaches the model only through the
input-embedding hook, as every method does; nothing in the library names it.
"""

import contextlib
import dataclasses
import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import flax.linen as nn

from adalink.models import layers, t5
from adalink.peft import methods
from adalink.train import step as step_lib
from adalink.train import trainer
from configs import glue as glue_configs
from tests.peft import batches

TOY = "toy_scale"
CFG = t5.get_config("tiny", dropout_rate=0.0)
D = CFG.d_model


class ChannelScale(nn.Module):
  init_scale: float

  @nn.compact
  def __call__(self, x):
    scale = layers.param_with_axes(
      self,
      "scale",
      nn.initializers.constant(self.init_scale),
      (x.shape[-1],),
      jnp.float32,
      (layers.EMBED,),
      layers.ADAPTERS,
    )
    return x * scale.astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class ToyScale(methods.MethodSpec):
  name: str = TOY
  init_scale: float = 1.0

  config_fields = ("init_scale",)

  @classmethod
  def from_config(cls, fields, ctx):
    value = fields.get("init_scale", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
      raise ValueError(f"method.init_scale must be a number > 0, got {value!r}")
    return cls(init_scale=float(value))

  def make_module(self, model):
    return ChannelScale(self.init_scale, name=TOY)

  def embed(self, module, streams, masks, ctx):
    return {**streams, "text": module(streams["text"])}, masks


@contextlib.contextmanager
def registered():
  methods.register_method(ToyScale)
  try:
    yield
  finally:
    methods.unregister_method(TOY)


@pytest.fixture
def toy():
  with registered():
    yield


def _batch(seed=0, b=4, lin=9, ltgt=5, vocab=CFG.vocab_size):
  return batches.text_batch(vocab, seed, b, lin, ltgt, input_lengths=[lin, 6] + [lin] * (b - 2))


def test_registered_method_owns_its_fields(toy):
  assert TOY in methods.METHODS
  spec = methods.spec_from_config({"name": TOY, "init_scale": 2}, D)
  assert isinstance(spec, ToyScale) and spec.init_scale == 2.0
  assert methods.MethodSpec(name=TOY, init_scale=3.0) == ToyScale(init_scale=3.0)
  with pytest.raises(ValueError, match="method.init_scal: not a field of method 'toy_scale'"):
    methods.spec_from_config({"name": TOY, "init_scal": 2.0}, D)
  with pytest.raises(ValueError, match="method.rank: not a field of method 'toy_scale'"):
    methods.spec_from_config({"name": TOY, "rank": 4}, D)
  with pytest.raises(ValueError, match=r"method.init_scale must be a number > 0, got -1.0"):
    methods.spec_from_config({"name": TOY, "init_scale": -1.0}, D)
  with pytest.raises(ValueError, match="method.init_scale must be a number > 0, got 'big'"):
    methods.spec_from_config({"name": TOY, "init_scale": "big"}, D)


def test_unregistered_method_is_unknown():
  with registered():
    methods.spec_from_config({"name": TOY}, D)
  assert TOY not in methods.METHODS
  with pytest.raises(ValueError, match="method.name: unknown method 'toy_scale'"):
    methods.spec_from_config({"name": TOY}, D)


def test_toy_starts_at_the_base_model_and_trains_only_its_scale(toy):
  base_params = t5.init_params(CFG, jax.random.PRNGKey(0))
  spec = methods.spec_from_config({"name": TOY}, D)
  model = methods.build_model(CFG, spec)
  variables = methods.init_variables(model, jax.random.PRNGKey(1), base_params)
  np.testing.assert_array_equal(np.asarray(variables["adapters"][TOY]["scale"]), np.ones(D))
  b = step_lib.model_inputs(_batch())
  base = t5.T5(CFG).apply({"params": base_params}, **b)
  np.testing.assert_array_equal(np.asarray(model.apply(variables, **b)), np.asarray(base))
  # Not vacuous: another scale changes the logits.
  scaled = {**variables, "adapters": {TOY: {"scale": jnp.full((D,), 1.5)}}}
  assert float(jnp.abs(model.apply(scaled, **b) - base).max()) > 1e-3
  trainable, frozen = methods.split_variables(spec, variables)
  assert list(trainable) == [layers.ADAPTERS] and set(frozen) == {"params"}
  assert methods.count_trainable(spec, methods.abstract_variables(model)) == {"trainable": D}


def test_toy_trains_through_train_and_evaluate(toy, tmp_path):
  config = glue_configs.get_config("smoke")
  config.method = ml_collections.ConfigDict({"name": TOY, "init_scale": 1.0})
  config.train.quiet = True
  config.train.num_steps = 4
  config.train.log_every = 1
  config.train.checkpoint_every = 4
  config.eval.every_steps = 0
  config.eval.max_examples = 8
  workdir = tmp_path / "w"
  result = trainer.train_and_evaluate(config, str(workdir))

  assert isinstance(result["spec"], ToyScale)
  assert result["metrics"]["step"] == 4
  assert 0.0 <= result["metrics"]["sst2/accuracy"] <= 100.0
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in records if r["kind"] == "train"]
  assert len(losses) == 4 and np.all(np.isfinite(losses)) and len(set(losses)) > 1
  # What trained is the toy's scale alone, and it moved.
  trainable, frozen = result["trainable"], result["frozen"]
  assert list(trainable) == [layers.ADAPTERS] and list(trainable[layers.ADAPTERS]) == [TOY]
  scale = np.asarray(trainable[layers.ADAPTERS][TOY]["scale"])
  assert scale.shape == (D,) and np.abs(scale - 1.0).max() > 1e-4
  # The moved scale changes the loss on a fixed batch (the frozen base is the same).
  batch = _batch(lin=16, ltgt=8, vocab=259)  # byte ids
  at_init = jax.tree_util.tree_map(jnp.ones_like, trainable)
  loss = lambda t: float(step_lib.loss_fn(result["model"], t, frozen, batch, None, True)[0])
  assert abs(loss(trainable) - loss(at_init)) > 1e-6
