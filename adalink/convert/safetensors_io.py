"""Reading and writing the safetensors format with numpy only (no torch, no safetensors package).

A safetensors file is: 8 bytes holding the header length N (unsigned, little endian), N bytes of
UTF-8 JSON, then the tensor bytes. The JSON maps each tensor name to `{"dtype", "shape",
"data_offsets": [begin, end]}` (offsets relative to the first byte after the header), plus an
optional `"__metadata__"` object of string to string. Tensors are C-ordered and little endian.

Reading is lazy: `SafetensorsFile` parses the header once and reads one tensor's bytes when asked,
so a caller can check names and shapes before touching any data. bfloat16 and float8 come from
`ml_dtypes` (the same types JAX uses).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import ml_dtypes
import numpy as np

# The safetensors dtype names and the numpy types they hold.
_DTYPES: Dict[str, np.dtype] = {
  "F64": np.dtype("<f8"),
  "F32": np.dtype("<f4"),
  "F16": np.dtype("<f2"),
  "BF16": np.dtype(ml_dtypes.bfloat16),
  "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
  "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
  "I64": np.dtype("<i8"),
  "I32": np.dtype("<i4"),
  "I16": np.dtype("<i2"),
  "I8": np.dtype("i1"),
  "U64": np.dtype("<u8"),
  "U32": np.dtype("<u4"),
  "U16": np.dtype("<u2"),
  "U8": np.dtype("u1"),
  "BOOL": np.dtype("bool"),
}
_NAMES = {v: k for k, v in _DTYPES.items()}

# A header larger than this is taken as a corrupt length field rather than allocated.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsFile:
  """The header of one safetensors file, with tensors read on demand by `get(name)`."""

  def __init__(self, path: str):
    self.path = os.fspath(path)
    size = os.path.getsize(self.path)
    with open(self.path, "rb") as f:
      head = f.read(8)
      if len(head) != 8:
        raise ValueError(f"{self.path}: not a safetensors file ({size} bytes, need at least 8)")
      (n,) = struct.unpack("<Q", head)
      if n > MAX_HEADER_BYTES or 8 + n > size:
        raise ValueError(
          f"{self.path}: header length {n} does not fit a file of {size} bytes "
          "(not a safetensors file, or truncated)"
        )
      try:
        header = json.loads(f.read(n).decode("utf-8"))
      except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{self.path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
      raise ValueError(f"{self.path}: header must be a JSON object, got {type(header).__name__}")
    self.metadata: Dict[str, str] = dict(header.pop("__metadata__", None) or {})
    self._data_start = 8 + n
    data_len = size - self._data_start
    self._entries: Dict[str, Tuple[np.dtype, Tuple[int, ...], int, int]] = {}
    for name, info in header.items():
      try:
        dtype_name, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
      except (KeyError, TypeError, ValueError):
        raise ValueError(f"{self.path}: malformed header entry for {name!r}: {info!r}") from None
      if dtype_name not in _DTYPES:
        raise ValueError(
          f"{self.path}: tensor {name!r} has unsupported dtype {dtype_name!r}; "
          f"supported: {sorted(_DTYPES)}"
        )
      dtype = _DTYPES[dtype_name]
      expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
      if not 0 <= begin <= end <= data_len or end - begin != expected:
        raise ValueError(
          f"{self.path}: tensor {name!r} ({dtype_name}, shape {list(shape)}) has "
          f"byte range [{begin}, {end}), expected {expected} bytes inside "
          f"[0, {data_len})"
        )
      self._entries[name] = (dtype, shape, begin, end)

  def keys(self) -> List[str]:
    return list(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries

  def shape(self, name: str) -> Tuple[int, ...]:
    return self._entries[name][1]

  def dtype(self, name: str) -> np.dtype:
    return self._entries[name][0]

  def get(self, name: str) -> np.ndarray:
    """The tensor `name` as a fresh numpy array in its stored dtype."""
    if name not in self._entries:
      raise KeyError(f"{self.path}: no tensor {name!r}")
    dtype, shape, begin, end = self._entries[name]
    with open(self.path, "rb") as f:
      f.seek(self._data_start + begin)
      buf = f.read(end - begin)
    return np.frombuffer(buf, dtype=dtype).reshape(shape).copy()


def load_file(path: str) -> Dict[str, np.ndarray]:
  """Every tensor of one file, by name."""
  f = SafetensorsFile(path)
  return {k: f.get(k) for k in f.keys()}


def _dtype_name(arr: np.ndarray, name: str) -> str:
  dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
  if dt not in _NAMES:
    raise ValueError(
      f"tensor {name!r}: dtype {arr.dtype} cannot be stored in safetensors; "
      f"supported: {sorted(str(d) for d in _NAMES)}"
    )
  return _NAMES[dt]


def save_file(
  tensors: Mapping[str, np.ndarray], path: str, metadata: Optional[Mapping[str, str]] = None
) -> None:
  """Writes `tensors` (name -> array) as one safetensors file, in the order given."""
  arrays = {}
  header: Dict[str, object] = {}
  if metadata:
    for k, v in metadata.items():
      if not isinstance(k, str) or not isinstance(v, str):
        raise ValueError(f"safetensors metadata must map str to str, got {k!r}: {v!r}")
    header["__metadata__"] = dict(metadata)
  offset = 0
  for name, value in tensors.items():
    arr = np.asarray(value)
    dtype_name = _dtype_name(arr, name)
    arr = np.asarray(arr, dtype=_DTYPES[dtype_name], order="C")  # keeps 0-d arrays 0-d
    header[name] = {
      "dtype": dtype_name,
      "shape": list(arr.shape),
      "data_offsets": [offset, offset + arr.nbytes],
    }
    arrays[name] = arr
    offset += arr.nbytes
  blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
  # Pad the header with spaces so the data starts 8-byte aligned (readers may map it in place).
  blob += b" " * (-(8 + len(blob)) % 8)
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(struct.pack("<Q", len(blob)))
    f.write(blob)
    for arr in arrays.values():
      f.write(arr.tobytes(order="C"))
  os.replace(tmp, path)


def plan_shards(sizes: Iterable[Tuple[str, int]], max_bytes: int) -> List[List[str]]:
  """Groups names (in order) into shards of at most `max_bytes`; one oversized tensor gets its
  own shard, as a tensor is never split."""
  if not isinstance(max_bytes, int) or max_bytes <= 0:
    raise ValueError(f"shard size must be a positive number of bytes, got {max_bytes!r}")
  shards: List[List[str]] = []
  current: List[str] = []
  used = 0
  for name, nbytes in sizes:
    if current and used + nbytes > max_bytes:
      shards.append(current)
      current, used = [], 0
    current.append(name)
    used += nbytes
  if current:
    shards.append(current)
  return shards
