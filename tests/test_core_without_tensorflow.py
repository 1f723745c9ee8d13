"""The core (models, adapters, train step, partitioning, decoding, trainer module) imports and
runs without TensorFlow or seqio, as on an accelerator machine that has only jax/flax/optax."""

import subprocess
import sys

PROGRAM = r"""
import sys

class Block:
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in ("tensorflow", "seqio", "tensorflow_text", "tensorflow_datasets"):
      raise ImportError(f"blocked: {name}")
    return None

sys.meta_path.insert(0, Block())
import jax, jax.numpy as jnp
from adalink.models import t5
from adalink.peft import methods
from adalink.train import checkpoints, decoding, optim, partitioning, step, trainer
from adalink.data.metrics import classification as metrics, cider, ptb_tokenizer
from adalink.convert import hf_t5, t5x
cfg = t5.get_config("tiny", dropout_rate=0.0)
spec = methods.spec_from_config({"name": "adalink", "rank": 4}, cfg.d_model)
model = methods.build_model(cfg, spec)
variables = methods.init_variables(model, jax.random.PRNGKey(0))
out = decoding.greedy_decode(model, variables, jnp.ones((2, 5), jnp.int32), 3)
assert out.shape == (2, 3)
assert not any(m.split(".")[0] in ("tensorflow", "seqio") for m in sys.modules)
print("ok")
"""


def test_core_runs_with_tensorflow_blocked():
  proc = subprocess.run(
    [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=300
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.strip().endswith("ok")
