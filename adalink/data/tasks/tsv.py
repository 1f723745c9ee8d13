"""Strict reading of tab-separated files in the ``glue_data/`` style, with line numbers for errors.

GLUE TSVs are not CSV: fields are never quoted (a lone ``"`` is literal text, as in MRPC), so a row is
exactly ``line.split("\\t")``. Lines end at ``\\n`` only (a trailing ``\\r`` is dropped); Python's
``str.splitlines`` is not used because it also breaks at characters such as U+2028 that occur inside
real sentences. A UTF-8 byte-order mark (MRPC ships one) is removed, and a missing final newline
(CoLA's dev file) is fine.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator


class MalformedRowError(ValueError):
  """A TSV row that cannot be used; the message names the file and the 1-based line number."""

  def __init__(self, path: str | os.PathLike, line_number: int, reason: str):
    self.path = os.fspath(path)
    self.line_number = line_number
    self.reason = reason
    super().__init__(f"{self.path}:{line_number}: malformed row: {reason}")


@dataclasses.dataclass(frozen=True)
class TsvRow:
  line_number: int  # 1-based, counting the header line when there is one
  fields: tuple[str, ...]


def read_lines(path: str | os.PathLike) -> list[str]:
  """The file's lines (BOM removed, ``\\n``-separated, no terminator, final empty line dropped)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"TSV file not found: {os.fspath(path)!r}")
  with open(path, "rb") as f:
    data = f.read()
  try:
    text = data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    line_number = data[: e.start].count(b"\n") + 1
    raise MalformedRowError(path, line_number, f"not valid UTF-8 ({e.reason})") from None
  lines = text.split("\n")
  if lines and lines[-1] == "":
    lines.pop()  # the terminator of the last line, not an empty row
  return [line[:-1] if line.endswith("\r") else line for line in lines]


def iter_rows(
  path: str | os.PathLike, has_header: bool
) -> tuple[tuple[str, ...] | None, Iterator[TsvRow]]:
  """Splits a TSV into its header (or None) and an iterator over data rows."""
  lines = read_lines(path)
  header = None
  start = 0
  if has_header:
    if not lines:
      raise MalformedRowError(path, 1, "the file is empty but a header line was expected")
    header = tuple(lines[0].split("\t"))
    start = 1

  def rows() -> Iterator[TsvRow]:
    for i in range(start, len(lines)):
      yield TsvRow(line_number=i + 1, fields=tuple(lines[i].split("\t")))

  return header, rows()


def count_data_rows(path: str | os.PathLike, has_header: bool) -> int:
  """Number of data lines (header excluded), counted independently of any parsing."""
  n = len(read_lines(path))
  return max(n - 1, 0) if has_header else n
