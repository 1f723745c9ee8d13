"""Inference (adalink.experiments.inference, behind scripts/infer.py) on a Hugging Face
directory: format detected, the directory's own spiece.model used, one decoded line per input,
equal to a direct greedy decode."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np

from adalink.convert import hf_t5
from adalink.data.pipeline import vocab as vocab_lib
from adalink.experiments import inference
from adalink.models import t5
from adalink.train import decoding


def test_infer_decodes_each_input_greedily(shared_dir, tmp_path):
  spm = shared_dir / "models" / "t5-vocab" / "spiece.model"
  config = t5.get_config("tiny", vocab_size=32128, dropout_rate=0.0)
  params = t5.init_params(config, jax.random.PRNGKey(4))
  hf_t5.save_hf_t5(config, jax.tree_util.tree_map(np.asarray, params), str(tmp_path / "ckpt"))
  shutil.copy(spm, tmp_path / "ckpt" / "spiece.model")
  texts = ["translate English to German: The house is wonderful.", "Hello world"]
  lines = inference.decode_texts(texts, checkpoint=str(tmp_path / "ckpt"), max_decode_len=6)
  assert len(lines) == 2

  vocab = vocab_lib.get_vocabulary("sentencepiece", str(spm))
  ids = [list(vocab.encode(t)) + [1] for t in texts]
  assert ids[0][:-1] == [13959, 1566, 12, 2968, 10, 37, 629, 19, 1627, 5]
  tokens = np.zeros((2, max(map(len, ids))), np.int32)
  for i, row in enumerate(ids):
    tokens[i, : len(row)] = row
  out = decoding.greedy_decode(t5.T5(config), params, jnp.asarray(tokens), 6)
  assert lines == [vocab.decode(r) for r in decoding.trim_after_eos(np.asarray(out))]
