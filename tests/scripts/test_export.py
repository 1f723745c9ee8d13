"""Export (adalink.experiments.export, behind scripts/export.py) on models trained here: the
Hugging Face directory loads in transformers with the project's logits, and both outputs read
back through the project's readers to the trained parameters exactly; LoRA is merged; what cannot
be represented is refused before anything is written; outputs are never overwritten without
force; contradictory options are refused."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the round trip loads the export in torch transformers")
transformers = pytest.importorskip("transformers")

from adalink import convert  # noqa: E402
from adalink.experiments.export import ExportError, ExportOptions, export  # noqa: E402
from adalink.convert import tree  # noqa: E402
from adalink.models import t5  # noqa: E402
from adalink.peft import methods  # noqa: E402
from adalink.train import trainer  # noqa: E402
from configs import glue as glue_configs  # noqa: E402

TOL = 1e-4
ENC_LENGTHS, ENC_LEN = [40, 33, 17, 5], 40
DEC_LENGTHS, DEC_LEN = [12, 9, 4, 1], 12


def _train(workdir, method: str, rank: int = 0, steps: int = 3):
  config = glue_configs.get_config("smoke")
  config.method = glue_configs.method_section(method, rank)
  config.train.num_steps = steps
  config.train.checkpoint_every = steps
  config.eval.enabled = False
  config.train.quiet = True
  result = trainer.train_and_evaluate(config, str(workdir))
  variables = methods.merge_variables(result["trainable"], result["frozen"])
  variables = jax.tree_util.tree_map(np.asarray, variables)
  return dict(
    workdir=workdir,
    config=config,
    model_config=trainer.model_config(config),
    spec=result["spec"],
    variables=variables,
  )


@pytest.fixture(scope="module")
def ft_run(tmp_path_factory):
  return _train(tmp_path_factory.mktemp("ft") / "run", "ft")


def _batch(seed: int, vocab: int):
  rng = np.random.RandomState(seed)
  enc = np.zeros((len(ENC_LENGTHS), ENC_LEN), np.int32)
  tgt = np.zeros((len(DEC_LENGTHS), DEC_LEN), np.int32)
  for i, n in enumerate(ENC_LENGTHS):
    enc[i, :n] = rng.randint(2, vocab, n)
  for i, n in enumerate(DEC_LENGTHS):
    tgt[i, :n] = rng.randint(2, vocab, n)
  dec_in = np.concatenate([np.zeros_like(tgt[:, :1]), tgt[:, :-1]], axis=1)
  return enc, dec_in, tgt


def _project_logits(run, enc, dec_in, tgt):
  """Logits of the model as the trainer trained it (adapters unmerged)."""
  model = methods.build_model(run["model_config"], run["spec"])
  return np.asarray(
    model.apply(run["variables"], jnp.asarray(enc), jnp.asarray(dec_in), jnp.asarray(tgt)),
    np.float32,
  )


def _hf_logits(hf_dir, enc, dec_in, tgt):
  model = transformers.T5ForConditionalGeneration.from_pretrained(
    str(hf_dir), attn_implementation="eager"
  ).eval()
  with torch.no_grad():
    out = model(
      input_ids=torch.tensor(enc, dtype=torch.long),
      attention_mask=torch.tensor(enc != 0, dtype=torch.long),
      decoder_input_ids=torch.tensor(dec_in, dtype=torch.long),
      decoder_attention_mask=torch.tensor(tgt != 0, dtype=torch.long),
    )
  return out.logits.float().numpy()


def _max_diff_at_targets(a, b, tgt):
  real = tgt != 0
  return float(np.abs(a[real] - b[real]).max())


def test_ft_run_round_trip(ft_run, tmp_path):
  hf_dir, t5x_file = tmp_path / "hf", tmp_path / "model.t5x"
  export(ExportOptions(workdir=str(ft_run["workdir"]), hf=str(hf_dir), t5x=str(t5x_file)))
  assert sorted(os.listdir(hf_dir)) == ["config.json", "model.safetensors"]  # byte vocab: no spm

  trained = tree.flatten(ft_run["variables"]["params"])
  # Training moved the weights, so an export of the untouched base would fail below.
  init = tree.flatten(t5.init_params(ft_run["model_config"], jax.random.PRNGKey(0)))
  assert any(not np.array_equal(trained[k], np.asarray(init[k])) for k in trained)

  cfg = ft_run["model_config"]
  enc, dec_in, tgt = _batch(0, 259)
  ours = _project_logits(ft_run, enc, dec_in, tgt)
  theirs = _hf_logits(hf_dir, enc, dec_in, tgt)
  diff = _max_diff_at_targets(ours, theirs, tgt)
  print(
    f"\nFT export: transformers vs project max |logit diff| = {diff:.2e} "
    f"(logit scale {np.abs(ours).max():.2f})"
  )
  assert diff <= TOL

  for path in (hf_dir, t5x_file):
    loaded_cfg, params = convert.load_checkpoint(str(path))
    loaded = tree.flatten(params)
    assert sorted(loaded) == sorted(trained), path
    for k in trained:
      np.testing.assert_array_equal(loaded[k], trained[k], err_msg=f"{path}: {k}")
    arch = lambda c: {k: v for k, v in c.to_dict().items() if k not in ("dropout_rate", "dtype")}
    assert arch(loaded_cfg) == arch(cfg), path


def test_existing_outputs_need_force(ft_run, tmp_path):
  hf_dir, t5x_file = tmp_path / "hf", tmp_path / "model.t5x"
  hf_dir.mkdir()
  (hf_dir / "notes.txt").write_text("keep me")
  with pytest.raises(ExportError, match="not empty.*--force"):
    export(ExportOptions(workdir=str(ft_run["workdir"]), hf=str(hf_dir)))
  assert os.listdir(hf_dir) == ["notes.txt"]
  t5x_file.write_bytes(b"old")
  with pytest.raises(ExportError, match="exists.*--force"):
    export(ExportOptions(workdir=str(ft_run["workdir"]), t5x=str(t5x_file)))
  assert t5x_file.read_bytes() == b"old"

  export(
    ExportOptions(
      workdir=str(ft_run["workdir"]), hf=str(hf_dir), t5x=str(t5x_file), force=True, verify=True
    )
  )
  assert sorted(os.listdir(hf_dir)) == ["config.json", "model.safetensors"]
  assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary left behind
  _, params = convert.load_checkpoint(str(t5x_file))
  assert tree.flatten(params).keys() == tree.flatten(ft_run["variables"]["params"]).keys()


def test_prompt_tuning_run_is_refused_before_anything_is_written(ft_run, tmp_path):
  workdir = tmp_path / "run"
  workdir.mkdir()
  config = json.loads((ft_run["workdir"] / "config.json").read_text())
  config["method"] = glue_configs.method_section("pt", 0).to_dict()
  (workdir / "config.json").write_text(json.dumps(config))
  with pytest.raises(ExportError, match="method 'pt' cannot be written.*prompt.*--base-only"):
    export(ExportOptions(workdir=str(workdir), hf=str(tmp_path / "hf")))
  assert not (tmp_path / "hf").exists()


def test_adalink_run_is_refused_unless_base_only(tmp_path):
  run = _train(tmp_path / "run", "adalink", rank=4, steps=1)
  hf_dir = tmp_path / "hf"
  with pytest.raises(
    ExportError, match="method 'adalink' cannot be written.*encoder's input embeddings.*--base-only"
  ):
    export(ExportOptions(workdir=str(run["workdir"]), hf=str(hf_dir)))
  assert not hf_dir.exists()
  export(ExportOptions(workdir=str(run["workdir"]), hf=str(hf_dir), base_only=True))
  # The frozen base: the seeded random init the run started from, with no adapter in it.
  _, params = convert.load_checkpoint(str(hf_dir))
  init = tree.flatten(t5.init_params(run["model_config"], jax.random.PRNGKey(0)))
  assert sorted(tree.flatten(params)) == sorted(init)
  for k, v in tree.flatten(params).items():
    np.testing.assert_array_equal(v, np.asarray(init[k]), err_msg=k)


def test_outputs_overlapping_the_source_are_refused(ft_run):
  before = sorted(os.listdir(ft_run["workdir"]))
  for out in (ft_run["workdir"], ft_run["workdir"].parent):
    with pytest.raises(ExportError, match="is or holds the model being exported"):
      export(ExportOptions(workdir=str(ft_run["workdir"]), hf=str(out), force=True))
  assert sorted(os.listdir(ft_run["workdir"])) == before


def test_bfloat16_export(ft_run, tmp_path):
  export(
    ExportOptions(
      workdir=str(ft_run["workdir"]),
      hf=str(tmp_path / "hf"),
      t5x=str(tmp_path / "m.t5x"),
      dtype="bfloat16",
      verify=True,
    )
  )
  header = (tmp_path / "hf" / "model.safetensors").read_bytes()[:4000]
  assert b'"BF16"' in header and b'"F32"' not in header
  trained = tree.flatten(ft_run["variables"]["params"])
  for path in (tmp_path / "hf", tmp_path / "m.t5x"):
    _, params = convert.load_checkpoint(str(path))
    for k, v in tree.flatten(params).items():
      rounded = np.asarray(jnp.asarray(trained[k]).astype(jnp.bfloat16), np.float32)
      np.testing.assert_array_equal(v, rounded, err_msg=f"{path}: {k}")


def test_lora_run_is_merged(tmp_path):
  run = _train(tmp_path / "run", "lora", rank=4, steps=2)
  adapters = tree.flatten(run["variables"]["adapters"])
  assert any(k.endswith("lora_b") and np.abs(v).max() > 0 for k, v in adapters.items())
  hf_dir = tmp_path / "hf"
  out = export(ExportOptions(workdir=str(run["workdir"]), hf=str(hf_dir), verify=True))
  base = tree.flatten(run["variables"]["params"])
  merged = tree.flatten(out["params"])
  changed = [k for k in base if not np.array_equal(base[k], merged[k])]
  assert changed and all(k.startswith("encoder/") and k.endswith("/kernel") for k in changed)

  enc, dec_in, tgt = _batch(1, 259)
  ours = _project_logits(run, enc, dec_in, tgt)
  diff = _max_diff_at_targets(ours, _hf_logits(hf_dir, enc, dec_in, tgt), tgt)
  print(f"\nLoRA export (merged): transformers vs project (unmerged) max |logit diff| = {diff:.2e}")
  assert diff <= TOL


def test_checkpoint_conversion_copies_the_vocabulary(shared_dir, tmp_path):
  spm = shared_dir / "models" / "t5-vocab" / "spiece.model"
  config = t5.get_config("tiny", vocab_size=32128, dropout_rate=0.0)
  params = jax.tree_util.tree_map(np.asarray, t5.init_params(config, jax.random.PRNGKey(3)))
  src = tmp_path / "t5x"
  src.mkdir()
  convert.save_t5x(params, str(src / "checkpoint"), step=7, config=config)
  shutil.copy(spm, src / "spiece.model")
  out = tmp_path / "hf"
  export(ExportOptions(checkpoint=str(src / "checkpoint"), hf=str(out), verify=True))
  assert (out / "spiece.model").read_bytes() == spm.read_bytes()
  _, back = convert.load_checkpoint(str(out))
  for k, v in tree.flatten(params).items():
    np.testing.assert_array_equal(tree.flatten(back)[k], v)
  # transformers builds the T5 tokenizer from the copied file: the real ids, and the first
  # sentinel where span corruption puts it (vocab_size - 1 with 100 extra ids).
  tok = transformers.AutoTokenizer.from_pretrained(str(out))
  assert tok("Hello world").input_ids == [8774, 296, 1]
  assert tok.convert_tokens_to_ids("<extra_id_0>") == 32099


def test_wrong_vocabulary_is_refused(ft_run, shared_dir, tmp_path):
  spm = shared_dir / "models" / "t5-vocab" / "spiece.model"
  with pytest.raises(ExportError, match="32000 pieces.*only 384 rows"):
    export(ExportOptions(workdir=str(ft_run["workdir"]), hf=str(tmp_path / "hf"), vocab=str(spm)))
  assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize(
  "options,message",
  [
    (dict(workdir="w"), "nothing to write"),
    (dict(hf="o"), "exactly one of workdir"),
    (dict(workdir="w", checkpoint="c", hf="o"), "exactly one of workdir"),
    (dict(checkpoint="c", hf="o", which="best"), "which, step and base_only apply to workdir"),
    (dict(checkpoint="c", hf="o", base_only=True), "which, step and base_only apply to workdir"),
    (dict(workdir="w", hf="o", size="base"), "size applies to checkpoint only"),
    (dict(workdir="w", hf="o", dtype="float16"), "dtype must be one of"),
  ],
)
def test_contradictory_options_are_refused(tmp_path, options, message):
  options = {
    k: str(tmp_path / v) if k in ("workdir", "checkpoint", "hf") else v for k, v in options.items()
  }
  with pytest.raises(ExportError, match=message):
    export(ExportOptions(**options))
