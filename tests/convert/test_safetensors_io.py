"""The numpy safetensors reader/writer against the `safetensors` package (an independent one)."""

import json
import struct

import ml_dtypes
import numpy as np
import pytest

from adalink.convert import safetensors_io

safetensors_numpy = pytest.importorskip(
  "safetensors.numpy", reason="the reference safetensors package"
)


def _tensors():
  rng = np.random.RandomState(0)
  return {
    "f32": rng.randn(3, 5).astype(np.float32),
    "f16": rng.randn(7).astype(np.float16),
    "bf16": rng.randn(2, 3, 4).astype(ml_dtypes.bfloat16),
    "i64": np.arange(-4, 5, dtype=np.int64),
    "u8": np.arange(6, dtype=np.uint8).reshape(2, 3),
    "empty": np.zeros((0, 4), np.float32),
  }


def _check_equal(a, b):
  assert sorted(a) == sorted(b)
  for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    np.testing.assert_array_equal(a[k].astype(np.float64), b[k].astype(np.float64), err_msg=k)


def test_reads_files_the_reference_wrote(tmp_path):
  path = str(tmp_path / "ref.safetensors")
  safetensors_numpy.save_file(_tensors(), path, metadata={"format": "pt"})
  f = safetensors_io.SafetensorsFile(path)
  assert f.metadata == {"format": "pt"}
  assert f.shape("bf16") == (2, 3, 4) and f.dtype("bf16") == ml_dtypes.bfloat16
  _check_equal(_tensors(), {k: f.get(k) for k in f.keys()})


def test_reference_reads_files_written_here(tmp_path):
  path = str(tmp_path / "ours.safetensors")
  safetensors_io.save_file(_tensors(), path, {"format": "pt"})
  _check_equal(_tensors(), safetensors_numpy.load_file(path))
  with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
  assert (8 + n) % 8 == 0  # data section aligned


def test_round_trip_keeps_scalars_and_order(tmp_path):
  path = str(tmp_path / "s.safetensors")
  tensors = dict(_tensors(), scalar=np.array(2.5, np.float64))  # the reference reads 0-d as (1,)
  safetensors_io.save_file(tensors, path)
  f = safetensors_io.SafetensorsFile(path)
  assert f.keys() == list(tensors) and f.metadata == {}
  _check_equal(tensors, safetensors_io.load_file(path))


def test_corrupt_files_are_rejected(tmp_path):
  path = tmp_path / "bad.safetensors"
  path.write_bytes(b"\x01\x02")
  with pytest.raises(ValueError, match=r"not a safetensors file \(2 bytes"):
    safetensors_io.SafetensorsFile(str(path))
  path.write_bytes(struct.pack("<Q", 10**6) + b"{}")
  with pytest.raises(ValueError, match="header length 1000000 does not fit a file of 10 bytes"):
    safetensors_io.SafetensorsFile(str(path))

  def write(header, data=b""):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)

  write({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}, b"\0" * 16)
  with pytest.raises(
    ValueError,
    match=r"'w' \(F32, shape \[2, 2\]\) has byte range \[0, 12\), "
    r"expected 16 bytes",
  ):
    safetensors_io.SafetensorsFile(str(path))
  write({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\0" * 8)
  with pytest.raises(ValueError, match=r"expected 16 bytes inside \[0, 8\)"):
    safetensors_io.SafetensorsFile(str(path))
  write({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8)
  with pytest.raises(ValueError, match="unsupported dtype 'C64'"):
    safetensors_io.SafetensorsFile(str(path))
  path.write_bytes(struct.pack("<Q", 3) + b"{x}")
  with pytest.raises(ValueError, match="header is not valid JSON"):
    safetensors_io.SafetensorsFile(str(path))


def test_unsupported_dtype_on_write(tmp_path):
  with pytest.raises(ValueError, match="tensor 'c': dtype complex64 cannot be stored"):
    safetensors_io.save_file({"c": np.zeros(2, np.complex64)}, str(tmp_path / "c.safetensors"))


def test_plan_shards():
  sizes = [("a", 40), ("b", 40), ("c", 100), ("d", 10), ("e", 10)]
  assert safetensors_io.plan_shards(sizes, 80) == [["a", "b"], ["c"], ["d", "e"]]
  assert safetensors_io.plan_shards(sizes, 1000) == [["a", "b", "c", "d", "e"]]
  with pytest.raises(ValueError, match="positive number of bytes, got 0"):
    safetensors_io.plan_shards(sizes, 0)
