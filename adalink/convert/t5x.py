"""T5X checkpoints <-> the project's T5 parameters (the same tree, so no renaming).

A T5X checkpoint is a msgpack file written with `flax.serialization`: `{"version": 3,
"optimizer": {"target": <params>, "state": <optimizer state>}}`. Arrays are inline (msgpack
extension type 1 holding (shape, dtype name, bytes)) in the single-file layout. In the directory
layout T5X uses for partitioned models, `checkpoint_N/checkpoint` holds, in place of each large
array, the TensorStore spec it was written to, e.g.
  {"driver": "zarr", "dtype": "float32",
   "kvstore": {"driver": "file", "path": "target.encoder.layers_0.attention.query.kernel"},
   "metadata": {"compressor": {"id": "gzip"}, "shape": [...], "chunks": [...]}}
with the path relative to the checkpoint directory (the parameter's '/'-joined state-dict path
with '.' separators). Specs written on GCS name a `gcs` kvstore; TensorStore before 0.1.14 put
`path` at the top level. Both are read here from local disk.

Only `target` (the parameters) is read. `load_t5x` infers the T5Config from the shapes (the head
count comes from the relative-position table) or checks every shape against a given config.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import ml_dtypes
import numpy as np
from flax import serialization

from adalink.convert import tree
from adalink.models import t5

CHECKPOINT_FILE = "checkpoint"
VERSION = 3
# Arrays larger than this are split into zarr chunks when written.
_CHUNK_BYTES = 64 * 1024 * 1024
_SAVE_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


def _is_spec(x: Any) -> bool:
  return isinstance(x, dict) and "driver" in x and ("kvstore" in x or "path" in x)


def resolve_path(path: str) -> Tuple[str, str]:
  """(msgpack file, directory relative TensorStore paths start from) for a checkpoint path:
  a `checkpoint_N` directory, its `checkpoint` file, or a single-file checkpoint."""
  path = os.fspath(path)
  if os.path.isdir(path):
    candidate = os.path.join(path, CHECKPOINT_FILE)
    if os.path.isfile(candidate):
      return candidate, path
    steps = sorted(
      (
        d
        for d in os.listdir(path)
        if re.fullmatch(r"checkpoint_\d+", d)
        and os.path.isfile(os.path.join(path, d, CHECKPOINT_FILE))
      ),
      key=lambda d: int(d.split("_")[1]),
    )
    if steps:
      raise ValueError(
        f"{path} is a T5X model directory holding {steps}; pass one of them "
        f"(e.g. {os.path.join(path, steps[-1])})"
      )
    raise ValueError(f"{path}: no T5X '{CHECKPOINT_FILE}' file in this directory")
  if os.path.isfile(path):
    return path, os.path.dirname(os.path.abspath(path))
  raise ValueError(f"T5X checkpoint {path} does not exist")


def read_target(path: str) -> Tuple[Dict[str, Any], str]:
  """The raw `target` subtree (arrays or TensorStore specs) and the base directory."""
  file, base = resolve_path(path)
  with open(file, "rb") as f:
    raw = f.read()
  if raw.startswith(b"model_checkpoint_path"):
    raise ValueError(f"{file} is a TensorFlow checkpoint index, not a T5X msgpack checkpoint")
  try:
    contents = serialization.msgpack_restore(raw)
  except Exception as e:  # msgpack raises several unrelated types for corrupt input
    raise ValueError(
      f"{file}: not a msgpack (T5X/Flax) checkpoint: {type(e).__name__}: {e}"
    ) from None
  if not isinstance(contents, dict):
    raise ValueError(f"{file}: expected a msgpack map at the top, got {type(contents).__name__}")
  # Version >= 2 wraps the optimizer state dict; a plain Flax checkpoint (no version) is it.
  optimizer = contents.get("optimizer", contents)
  if not isinstance(optimizer, dict) or "target" not in optimizer:
    raise ValueError(
      f"{file}: no 'optimizer/target' (parameters) in this checkpoint; top-level "
      f"keys: {sorted(contents)}"
    )
  return optimizer["target"], base


def _local_spec(spec: Mapping[str, Any], base: str, key: str) -> Dict[str, Any]:
  """A copy of a stored spec that opens the array under `base` on local disk."""
  spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec.items()}
  if spec.get("driver") != "zarr":
    raise ValueError(
      f"T5X parameter {key!r}: unsupported TensorStore driver "
      f"{spec.get('driver')!r} (expected 'zarr')"
    )
  if "kvstore" in spec and isinstance(spec["kvstore"], dict) and "path" in spec["kvstore"]:
    relative = spec["kvstore"]["path"]
  elif isinstance(spec.get("path"), str):
    relative = spec.pop("path")
  else:
    raise ValueError(f"T5X parameter {key!r}: TensorStore spec names no path: {spec}")
  if os.path.isabs(relative):
    raise ValueError(
      f"T5X parameter {key!r}: absolute TensorStore path {relative!r}; T5X writes "
      "paths relative to the checkpoint directory"
    )
  spec["kvstore"] = {"driver": "file", "path": os.path.join(base, relative)}
  metadata = dict(spec.get("metadata") or {})
  if spec.get("dtype") == "uint16" or metadata.get("dtype") == "<u2":
    raise ValueError(
      f"T5X parameter {key!r} is stored as uint16 (bfloat16 bits from checkpoint "
      "version 2); re-save it with bfloat16 arrays (version 3)"
    )
  # Chunking and compression are read from the stored .zarray; only the shape is kept to check.
  spec["metadata"] = {k: v for k, v in metadata.items() if k == "shape"}
  return spec


def _spec_shape(spec: Mapping[str, Any]) -> Optional[Tuple[int, ...]]:
  shape = (spec.get("metadata") or {}).get("shape")
  return None if shape is None else tuple(int(s) for s in shape)


def _read_spec(spec: Mapping[str, Any], base: str, key: str) -> np.ndarray:
  try:
    import tensorstore as ts  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ImportError(
      f"T5X parameter {key!r} is stored with TensorStore; install `tensorstore` "
      "to read this checkpoint"
    ) from None
  local = _local_spec(spec, base, key)
  try:
    store = ts.open(local, open=True, read=True).result()
    return np.asarray(store.read().result())
  except ValueError as e:  # TensorStore reports missing or corrupt arrays as ValueError
    raise ValueError(
      f"T5X parameter {key!r}: cannot read TensorStore array at {local['kvstore']['path']}: {e}"
    ) from None


def infer_config(
  shapes: Mapping[str, Tuple[int, ...]], source: str = "T5X checkpoint"
) -> t5.T5Config:
  """A T5Config from parameter shapes alone. Shapes do not fix the activation (gated MLPs are
  taken as v1.1's GELU, single ones as ReLU), `relative_attention_max_distance` (128, as in
  every published T5) or `layer_norm_epsilon` (1e-6); pass a config when those differ."""

  def need(key):
    if key not in shapes:
      raise ValueError(f"{source}: cannot infer the config: missing {key!r}")
    return shapes[key]

  vocab, d_model = need("token_embedder/embedding")
  heads, buckets = need("encoder/relpos_bias/rel_embedding")
  inner = need("encoder/layers_0/attention/query/kernel")[1]
  if inner % heads:
    raise ValueError(
      f"{source}: attention width {inner} is not a multiple of the {heads} heads "
      "of 'encoder/relpos_bias/rel_embedding'"
    )

  def count(stack):
    return len({m.group(1) for k in shapes for m in [re.match(rf"^{stack}/layers_(\d+)/", k)] if m})

  gated = "encoder/layers_0/mlp/wi_0/kernel" in shapes
  d_ff = need("encoder/layers_0/mlp/wi_0/kernel" if gated else "encoder/layers_0/mlp/wi/kernel")[1]
  try:
    return t5.T5Config(
      vocab_size=vocab,
      d_model=d_model,
      num_heads=heads,
      d_kv=inner // heads,
      d_ff=d_ff,
      num_encoder_layers=count("encoder"),
      num_decoder_layers=count("decoder"),
      mlp_activations=("gelu", "linear") if gated else ("relu",),
      tie_word_embeddings="decoder/logits_dense/kernel" not in shapes,
      relative_attention_num_buckets=buckets,
    )
  except ValueError as e:
    raise ValueError(f"{source}: inferred an invalid config: {e}") from None


def load_t5x(
  path: str, config: Union[t5.T5Config, str, None] = None, **overrides
) -> Tuple[t5.T5Config, Dict[str, Any]]:
  """(T5Config, params as float32 numpy) from a T5X checkpoint (either layout).

  `config` is a T5Config, a size name from `t5.SIZES`, or None to infer it from the shapes
  (`infer_config`); `overrides` then replace fields (e.g. `relative_attention_max_distance`,
  `mlp_activations` or `dtype`, which shapes cannot tell). Every parameter's shape is checked
  against the result before any TensorStore array is read; problems raise ValueError naming the
  key and both shapes.
  """
  target, base = read_target(path)
  source = f"T5X checkpoint {os.fspath(path)}"
  leaves = tree.flatten(_collapse_specs(target))
  shapes = {}
  for key, value in leaves.items():
    if isinstance(value, _Spec):
      shape = _spec_shape(value.spec)
      if shape is None:
        raise ValueError(f"{source}: TensorStore spec of {key!r} records no shape")
      shapes[key] = shape
    else:
      shapes[key] = tuple(np.shape(value))

  cfg = infer_config(shapes, source) if config is None else tree.resolve_config(config)
  if overrides:
    unknown = sorted(set(overrides) - set(cfg.to_dict()))
    if unknown:
      raise ValueError(f"unknown T5Config field(s) {unknown} in overrides")
    cfg = cfg.replace(**overrides)
  tree.check_shapes(shapes, tree.expected_shapes(cfg), source)

  params = {}
  for key, value in leaves.items():
    arr = _read_spec(value.spec, base, key) if isinstance(value, _Spec) else value
    if tuple(np.shape(arr)) != shapes[key]:
      raise ValueError(
        f"{source}: {key!r} read with shape {tuple(np.shape(arr))}, but its spec "
        f"records {shapes[key]}"
      )
    params[key] = tree.to_float32(arr, key, source)
  return cfg, tree.unflatten(params)


class _Spec:
  """Marks a TensorStore spec as one leaf while the tree is flattened."""

  def __init__(self, spec):
    self.spec = spec


def _collapse_specs(node: Any) -> Any:
  if _is_spec(node):
    return _Spec(node)
  if isinstance(node, dict):
    return {k: _collapse_specs(v) for k, v in node.items()}
  return node


def _checked(
  params: Mapping[str, Any], config: Optional[t5.T5Config], dtype: str
) -> Dict[str, np.ndarray]:
  if dtype not in _SAVE_DTYPES:
    raise ValueError(f"dtype must be one of {sorted(_SAVE_DTYPES)}, got {dtype!r}")
  flat = tree.flatten(params)
  if config is not None:
    tree.check_shapes(
      {k: np.shape(v) for k, v in flat.items()}, tree.expected_shapes(config), "params to save"
    )
  return {k: np.asarray(v, dtype=np.float32).astype(_SAVE_DTYPES[dtype]) for k, v in flat.items()}


def _contents(target: Mapping[str, Any], step: int) -> Dict[str, Any]:
  # Only the parameters are exported; the optimizer state records the step alone.
  return {
    "version": VERSION,
    "optimizer": {"target": dict(target), "state": {"step": np.asarray(step, np.int32)}},
  }


def _write_atomic(path: str, data: bytes) -> None:
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def save_t5x(
  params: Mapping[str, Any],
  path: str,
  step: int = 0,
  config: Optional[t5.T5Config] = None,
  dtype: str = "float32",
) -> None:
  """Writes a single-file T5X checkpoint (every array inline in the msgpack) at `path`.
  With `config`, the tree is checked against it first."""
  flat = _checked(params, config, dtype)
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  _write_atomic(path, serialization.msgpack_serialize(_contents(tree.unflatten(flat), step)))


def chunk_shape(
  shape: Tuple[int, ...], itemsize: int, max_bytes: Optional[int] = None
) -> Tuple[int, ...]:
  """A zarr chunk shape of at most `max_bytes` (default 64 MiB), halving the longest axis until
  it fits (zarr allows a partial last chunk, so axes need not divide evenly)."""
  max_bytes = _CHUNK_BYTES if max_bytes is None else max_bytes
  chunk = [max(1, s) for s in shape]
  while int(np.prod(chunk, dtype=np.int64)) * itemsize > max_bytes and max(chunk) > 1:
    i = int(np.argmax(chunk))
    chunk[i] = (chunk[i] + 1) // 2
  return tuple(chunk)


def save_t5x_dir(
  params: Mapping[str, Any],
  ckpt_dir: str,
  step: int = 0,
  config: Optional[t5.T5Config] = None,
  dtype: str = "float32",
) -> None:
  """Writes the T5X directory layout: each parameter as a gzip-compressed zarr array in
  `ckpt_dir/target.<path with dots>`, and `ckpt_dir/checkpoint` holding their specs."""
  import tensorstore as ts  # pylint: disable=import-outside-toplevel

  flat = _checked(params, config, dtype)
  os.makedirs(ckpt_dir, exist_ok=True)
  specs = {}
  for key, arr in flat.items():
    name = "target." + key.replace("/", ".")
    spec = {
      "driver": "zarr",
      "dtype": np.dtype(arr.dtype).name,
      "kvstore": {"driver": "file", "path": name},
      "metadata": {
        "compressor": {"id": "gzip"},
        "shape": list(arr.shape),
        "chunks": list(chunk_shape(arr.shape, arr.dtype.itemsize)),
      },
    }
    local = dict(spec, kvstore={"driver": "file", "path": os.path.join(ckpt_dir, name)})
    store = ts.open(local, create=True, delete_existing=True).result()
    store.write(arr).result()
    specs[key] = spec
  _write_atomic(
    os.path.join(ckpt_dir, CHECKPOINT_FILE),
    serialization.msgpack_serialize(_contents(tree.unflatten(specs), step)),
  )
