"""A run with scanned layers and remat trains as the unrolled run does, and what it writes (adapter
files, exported checkpoints) is in the unrolled layout every reader expects."""

import json
import shutil

import numpy as np
import pytest

from adalink.experiments import export as export_lib
from adalink.experiments import serve
from adalink.peft import adapter_file
from adalink.train import trainer
from configs import common
from configs import glue as glue_configs

STEPS = 6


def _lora_smoke(**model):
  config = glue_configs.get_config("smoke")
  config.train.quiet = True
  config.method = common.method_section("lora", 2)
  config.train.num_steps = STEPS
  config.train.log_every = 1
  config.train.checkpoint_every = STEPS
  config.eval.enabled = False
  config.data.batch_size = 4
  for field, value in model.items():
    config.model[field] = value
  return config


def _losses(workdir):
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return np.array([r["loss"] for r in records if r["kind"] == "train"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("scan")
  trainer.train_and_evaluate(_lora_smoke(), str(root / "unrolled"))
  trainer.train_and_evaluate(_lora_smoke(scan_layers=True, remat="full"), str(root / "scanned"))
  return root


def test_scanned_lora_run_has_the_unrolled_losses(runs):
  unrolled, scanned = _losses(runs / "unrolled"), _losses(runs / "scanned")
  assert len(unrolled) == len(scanned) == STEPS
  np.testing.assert_allclose(scanned, unrolled, rtol=1e-5)


def test_adapter_and_merged_checkpoint_of_a_scanned_run_are_the_unrolled_ones(runs):
  files = {}
  for name in ("unrolled", "scanned"):
    serve.export_adapter(str(runs / name), str(runs / f"{name}_adapter"))
    files[name] = adapter_file.load(str(runs / f"{name}_adapter"))
  assert sorted(files["scanned"].tensors) == sorted(files["unrolled"].tensors)
  assert any("layers_1" in key for key in files["scanned"].tensors)
  for key, value in files["unrolled"].tensors.items():
    np.testing.assert_allclose(files["scanned"].tensors[key], value, atol=1e-6, err_msg=key)
  assert files["scanned"].base == files["unrolled"].base  # same architecture and fingerprint

  config_u, params_u, _, _ = export_lib.run_params(str(runs / "unrolled"))
  config_s, params_s, _, _ = export_lib.run_params(str(runs / "scanned"))
  assert config_s == config_u and not config_s.scan_layers
  flat_u, flat_s = adapter_file.flatten(params_u), adapter_file.flatten(params_s)
  assert sorted(flat_s) == sorted(flat_u)
  for key, value in flat_u.items():
    np.testing.assert_allclose(flat_s[key], value, atol=1e-6, err_msg=key)


def test_resuming_in_the_other_layout_is_refused_but_remat_may_change(runs, tmp_path):
  other = _lora_smoke()  # unrolled, onto the scanned run
  other.train.num_steps = STEPS + 2
  with pytest.raises(ValueError, match=r"config.model \(fields \['scan_layers'\]"):
    trainer.train_and_evaluate(other, str(runs / "scanned"))
  # A run recorded before the layout fields existed resumes as an unrolled run, and the remat
  # policy may change between a run and its resumption.

  old = tmp_path / "old"
  shutil.copytree(runs / "unrolled", old)
  recorded = json.loads((old / "config.json").read_text())
  del recorded["model"]["scan_layers"], recorded["model"]["remat"]
  (old / "config.json").write_text(json.dumps(recorded))
  more = _lora_smoke(remat="full")
  more.train.num_steps = STEPS + 2
  trainer.train_and_evaluate(more, str(old))
  assert len(_losses(old)) == STEPS + 2
