"""Reads one split of a GLUE task from the standard ``glue_data/`` TSV layout into columns.

Pure Python; the result has the same fields and dtypes as TFDS ``glue/*`` (``idx``, ``label``, the
task's text fields), which is what lets the seqio tasks treat both sources alike.

Every row is checked: the number of tab-separated fields must match the header (or the fixed layout
of header-less CoLA), and the label must be valid for the task. A bad row raises
``MalformedRowError`` naming the file and line, or, with ``on_bad_row="skip"``, is dropped and counted;
one warning per file then gives the count and the first bad line.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os

from adalink.data.tasks import tsv
from adalink.data.tasks.glue_spec import GlueTaskSpec

ON_BAD_ROW = ("error", "skip")

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class GlueColumns:
  """Column-wise examples of one split, plus what was skipped."""

  idx: list[int]
  label: list[float] | list[int]
  text: dict[str, list[str]]
  skipped: int = 0

  def __len__(self) -> int:
    return len(self.idx)


def split_path(spec: GlueTaskSpec, data_dir: str | os.PathLike, split: str) -> str:
  if split not in spec.tsv_split_files:
    raise ValueError(
      f"GLUE task {spec.name!r} has no split {split!r}; known splits: {tuple(spec.tsv_split_files)}"
    )
  return os.path.join(os.fspath(data_dir), spec.tsv_dir, spec.tsv_split_files[split])


def available_splits(spec: GlueTaskSpec, data_dir: str | os.PathLike) -> tuple[str, ...]:
  """The splits whose files exist under ``data_dir``."""
  return tuple(s for s in spec.tsv_split_files if os.path.isfile(split_path(spec, data_dir, s)))


def _is_test_split(split: str) -> bool:
  # GLUE test files always carry a header and never a label.
  return split.startswith("test")


def _parse_label(spec: GlueTaskSpec, value: str) -> tuple[float | int | None, str]:
  """(label, "") on success, (None, reason) on failure."""
  value = value.strip()
  if spec.is_regression:
    try:
      score = float(value)
    except ValueError:
      return None, f"score {value!r} is not a number"
    if not (math.isfinite(score) and 0.0 <= score <= 5.0):
      return None, f"score {value!r} is outside [0, 5]"
    return score, ""
  if value in spec.label_names:
    return spec.label_names.index(value), ""
  # Integer ids, as in the original CoLA/SST-2/MRPC/QQP files and HF-style exports.
  if value.isdigit() and int(value) < len(spec.label_names):
    return int(value), ""
  return None, f"label {value!r} is not one of {spec.label_names} or 0..{len(spec.label_names) - 1}"


def load_split(
  spec: GlueTaskSpec, data_dir: str | os.PathLike, split: str, on_bad_row: str = "error"
) -> GlueColumns:
  """Reads ``split`` of ``spec`` from ``data_dir`` (the folder holding ``SST-2/``, ``RTE/``, ...)."""
  if on_bad_row not in ON_BAD_ROW:
    raise ValueError(f"on_bad_row must be one of {ON_BAD_ROW}, got {on_bad_row!r}")
  path = split_path(spec, data_dir, split)
  is_test = _is_test_split(split)
  has_header = spec.tsv_has_header or is_test
  header, rows = tsv.iter_rows(path, has_header=has_header)

  if header is not None:
    wanted = spec.tsv_test_columns if is_test and spec.tsv_test_columns else spec.tsv_columns
    missing = [c for c in wanted.values() if c not in header]
    if missing:
      raise tsv.MalformedRowError(path, 1, f"header {header} lacks column(s) {missing}")
    columns = {field: header.index(name) for field, name in wanted.items()}
    label_col = header.index(spec.tsv_label_column) if spec.tsv_label_column in header else None
    if label_col is None and not is_test:
      raise tsv.MalformedRowError(
        path, 1, f"header {header} lacks the label column {spec.tsv_label_column!r}"
      )
    num_fields = len(header)
  else:
    columns = dict(spec.tsv_columns)
    label_col = spec.tsv_label_column
    num_fields = spec.tsv_num_fields

  first_data_line = 2 if header is not None else 1
  out = GlueColumns(idx=[], label=[], text={f: [] for f in spec.text_fields})
  first_bad: tsv.MalformedRowError | None = None
  for row in rows:
    if len(row.fields) != num_fields:
      reason = f"expected {num_fields} tab-separated fields, found {len(row.fields)}"
      label = None
    elif label_col is None:
      label, reason = (-1.0 if spec.is_regression else -1), ""
    else:
      label, reason = _parse_label(spec, row.fields[label_col])
    if label is None:
      error = tsv.MalformedRowError(path, row.line_number, reason)
      if on_bad_row == "error":
        raise error
      out.skipped += 1
      first_bad = first_bad or error
      continue
    # idx is the row's position among the file's data rows, as TFDS numbers them.
    out.idx.append(row.line_number - first_data_line)
    out.label.append(label)
    for field, col in columns.items():
      out.text[field].append(row.fields[col])
  if out.skipped:
    logger.warning("%s: skipped %d malformed row(s); first: %s", path, out.skipped, first_bad)
  return out
