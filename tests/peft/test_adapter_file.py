"""Adapter files: a round trip keeps every array, and an adapter that does not fit its base (or a
damaged or foreign file) is refused with the key or field named."""

import json
import os

import flax.linen as nn
import jax
import numpy as np
import pytest

from adalink.models import t5
from adalink.peft import adapter_file, methods

CFG = t5.get_config("tiny", dropout_rate=0.0)


@pytest.fixture(scope="module")
def base_params():
  return t5.init_params(CFG, jax.random.PRNGKey(0))


def _expected(method_cfg, num_tasks=1):
  spec = methods.spec_from_config(method_cfg, CFG.d_model, num_tasks=num_tasks)
  model = methods.build_model(CFG, spec)
  return methods.split_variables(spec, nn.unbox(methods.abstract_variables(model)))[0]


def _adapter(base_params, method_cfg=None, num_tasks=1, seed=0):
  method_cfg = method_cfg or {"name": "adalink", "rank": 4}
  rs = np.random.RandomState(seed)
  tensors = {
    k: rs.normal(size=v.shape).astype(v.dtype)
    for k, v in adapter_file.flatten(_expected(method_cfg, num_tasks), as_numpy=False).items()
  }
  return adapter_file.AdapterFile(
    method=dict(method_cfg),
    tensors=tensors,
    base={
      "kind": "t5",
      "architecture": adapter_file.architecture(CFG),
      "fingerprint": adapter_file.fingerprint_arrays(base_params),
    },
    vocabulary={"kind": "byte", "extra_ids": 0, "fingerprint": "byte:0"},
    tasks={"sst2": 1, "cola": 0} if num_tasks > 1 else {},
    num_tasks=num_tasks,
  )


def _fits(adapter, base_params, method_cfg=None, num_tasks=1, **kw):
  args = dict(
    expected=_expected(method_cfg or adapter.method, num_tasks),
    base_kind="t5",
    base_architecture=adapter_file.architecture(CFG),
    base_fingerprint=adapter_file.fingerprint_arrays(base_params),
    vocabulary_fingerprint="byte:0",
  )
  args.update(kw)
  adapter_file.check_fits(adapter, **args)


@pytest.mark.parametrize(
  "method_cfg,num_tasks",
  [
    ({"name": "adalink", "rank": 4}, 1),
    ({"name": "adalink", "rank": 2, "per_task": True}, 2),
    ({"name": "lora", "rank": 2, "alpha": 4.0}, 1),
    ({"name": "pt", "num_prompts": 3}, 1),
    ({"name": "placement", "rank": 2, "edges": ((0, 0), (1, 2))}, 1),
  ],
)
def test_round_trip_keeps_every_array_and_the_record(base_params, tmp_path, method_cfg, num_tasks):
  saved = _adapter(base_params, method_cfg, num_tasks)
  adapter_file.save(saved, str(tmp_path / "a"))
  loaded = adapter_file.load(str(tmp_path / "a"))
  assert sorted(loaded.tensors) == sorted(saved.tensors)
  for k, v in saved.tensors.items():
    np.testing.assert_array_equal(loaded.tensors[k], v)
  assert (loaded.method, loaded.tasks, loaded.num_tasks) == (
    json.loads(json.dumps(method_cfg)),
    saved.tasks,
    num_tasks,
  )
  _fits(loaded, base_params, method_cfg, num_tasks)
  # The tree form is what merges into the model's variables.
  assert set(loaded.tree()) == {"adapters"}


def test_save_never_replaces_an_adapter_silently(base_params, tmp_path):
  adapter_file.save(_adapter(base_params), str(tmp_path))
  before = open(tmp_path / adapter_file.TENSORS_FILE, "rb").read()
  with pytest.raises(FileExistsError, match="exists"):
    adapter_file.save(_adapter(base_params, seed=1), str(tmp_path))
  assert open(tmp_path / adapter_file.TENSORS_FILE, "rb").read() == before
  adapter_file.save(_adapter(base_params, seed=1), str(tmp_path), overwrite=True)
  assert open(tmp_path / adapter_file.TENSORS_FILE, "rb").read() != before
  assert sorted(os.listdir(tmp_path)) == sorted(
    [adapter_file.CONFIG_FILE, adapter_file.TENSORS_FILE]
  )


def test_missing_and_unexpected_keys_are_named(base_params):
  adapter = _adapter(base_params)
  key = "adapters/adalink/text/up"
  del adapter.tensors[key]
  with pytest.raises(adapter_file.AdapterMismatch, match=f"missing tensor '{key}'"):
    _fits(adapter, base_params)
  adapter = _adapter(base_params)
  adapter.tensors["adapters/adalink/image/up"] = adapter.tensors[key]
  with pytest.raises(
    adapter_file.AdapterMismatch, match="unexpected tensor 'adapters/adalink/image"
  ):
    _fits(adapter, base_params)


def test_shape_and_dtype_mismatches_are_named(base_params):
  adapter = _adapter(base_params)
  key = "adapters/adalink/text/down"
  adapter.tensors[key] = adapter.tensors[key][:, :, :2]
  with pytest.raises(
    adapter_file.AdapterMismatch,
    match=f"'{key}' has shape \\(1, 32, 2\\), the model wants \\(1, 32, 4\\)",
  ):
    _fits(adapter, base_params)
  adapter = _adapter(base_params)
  adapter.tensors[key] = adapter.tensors[key].astype(np.float16)
  with pytest.raises(adapter_file.AdapterMismatch, match=f"'{key}' has dtype float16"):
    _fits(adapter, base_params)


def test_another_base_is_refused_unless_allowed(base_params):
  adapter = _adapter(base_params)
  other = t5.init_params(CFG, jax.random.PRNGKey(9))
  with pytest.raises(
    adapter_file.AdapterMismatch, match="base.fingerprint .* --allow-different-base"
  ):
    _fits(adapter, other, base_fingerprint=adapter_file.fingerprint_arrays(other))
  _fits(
    adapter,
    other,
    base_fingerprint=adapter_file.fingerprint_arrays(other),
    allow_different_base=True,
  )
  # Another architecture is never allowed: the field is named.
  wider = adapter_file.architecture(CFG.replace(d_ff=CFG.d_ff * 2))
  with pytest.raises(
    adapter_file.AdapterMismatch, match="base.architecture.d_ff is 64, the base given has 128"
  ):
    _fits(adapter, base_params, base_architecture=wider, allow_different_base=True)
  with pytest.raises(adapter_file.AdapterMismatch, match="vocabulary.fingerprint byte:0 differs"):
    _fits(adapter, base_params, vocabulary_fingerprint="sha256:abc")
  with pytest.raises(adapter_file.AdapterMismatch, match="base.kind is 't5'"):
    _fits(adapter, base_params, base_kind="pali")


def test_the_fingerprint_sees_one_changed_value(base_params):
  changed = jax.tree_util.tree_map(np.array, base_params)
  changed["decoder"]["decoder_norm"]["scale"][3] += 1e-6
  assert adapter_file.fingerprint_arrays(changed) != adapter_file.fingerprint_arrays(base_params)
  assert adapter_file.fingerprint_arrays(
    jax.tree_util.tree_map(np.array, base_params)
  ) == adapter_file.fingerprint_arrays(base_params)


def test_damaged_or_foreign_files_are_refused_with_the_file_named(base_params, tmp_path):
  directory = str(tmp_path)
  adapter_file.save(_adapter(base_params), directory)
  config_path = os.path.join(directory, adapter_file.CONFIG_FILE)
  record = json.load(open(config_path))
  json.dump({**record, "format_version": 99}, open(config_path, "w"))
  with pytest.raises(adapter_file.AdapterMismatch, match="format_version 99"):
    adapter_file.load(directory)
  json.dump({**record, "format": "peft"}, open(config_path, "w"))
  with pytest.raises(adapter_file.AdapterMismatch, match="format is 'peft'"):
    adapter_file.load(directory)
  listed = dict(record["tensors"])
  listed["adapters/adalink/text/extra"] = {"shape": [1], "dtype": "float32"}
  json.dump({**record, "tensors": listed}, open(config_path, "w"))
  with pytest.raises(adapter_file.AdapterMismatch, match="'adapters/adalink/text/extra' listed"):
    adapter_file.load(directory)
  open(config_path, "w").write("{not json")
  with pytest.raises(adapter_file.AdapterMismatch, match="not valid JSON \\(line 1"):
    adapter_file.load(directory)
  json.dump(record, open(config_path, "w"))
  tensors_path = os.path.join(directory, adapter_file.TENSORS_FILE)
  open(tensors_path, "wb").write(b"\x00" * 16)
  with pytest.raises(adapter_file.AdapterMismatch, match="adapter.safetensors: unreadable"):
    adapter_file.load(directory)
  os.remove(tensors_path)
  with pytest.raises(FileNotFoundError, match="adapter.safetensors is missing"):
    adapter_file.load(directory)
