"""The glue_data/ TSV reader: layouts, malformed rows (file and line in the error, or skip + count)."""

import logging
import os

import pytest

from adalink.data.tasks import glue_source, glue_spec, tsv


def _write(path, text, encoding="utf-8"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding=encoding, newline="") as f:
    f.write(text)


def test_bom_crlf_and_missing_final_newline(tmp_path):
  p = tmp_path / "x.tsv"
  _write(p, "a\tb\r\n1\t2\r\n3\t4", encoding="utf-8-sig")
  header, rows = tsv.iter_rows(p, has_header=True)
  assert header == ("a", "b")
  assert [(r.line_number, r.fields) for r in rows] == [(2, ("1", "2")), (3, ("3", "4"))]
  assert tsv.count_data_rows(p, has_header=True) == 2


def test_quotes_and_unicode_line_separators_are_plain_text(tmp_path):
  p = tmp_path / "x.tsv"
  _write(p, 'sentence\tlabel\n"unbalanced quote\t1\nline\u2028separator inside\t0\n')
  _, rows = tsv.iter_rows(p, has_header=True)
  assert [r.fields[0] for r in rows] == ['"unbalanced quote', "line\u2028separator inside"]


def _rte_dir(tmp_path, body):
  _write(tmp_path / "RTE" / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n" + body)
  return tmp_path


def test_wrong_field_count_names_file_and_line(tmp_path):
  d = _rte_dir(tmp_path, "0\tA.\tB.\tentailment\n1\tonly two fields\n")
  with pytest.raises(tsv.MalformedRowError) as e:
    glue_source.load_split(glue_spec.get_spec("rte"), d, "validation")
  assert e.value.line_number == 3
  assert str(d / "RTE" / "dev.tsv") in str(e.value) and ":3:" in str(e.value)
  assert "expected 4 tab-separated fields, found 2" in str(e.value)


def test_bad_label_names_file_and_line(tmp_path):
  d = _rte_dir(tmp_path, "0\tA.\tB.\tentailment\n1\tA.\tB.\tmaybe\n2\tA.\tB.\tnot_entailment\n")
  with pytest.raises(tsv.MalformedRowError, match=r"dev\.tsv:3: .*'maybe'"):
    glue_source.load_split(glue_spec.get_spec("rte"), d, "validation")


def test_bad_rows_can_be_skipped_with_one_warning_giving_the_count(tmp_path, caplog):
  d = _rte_dir(
    tmp_path, "0\tA.\tB.\tentailment\n1\tbroken\n2\tA.\tB.\tnope\n3\tC.\tD.\tnot_entailment\n"
  )
  with caplog.at_level(logging.WARNING, logger="adalink.data.tasks.glue_source"):
    cols = glue_source.load_split(glue_spec.get_spec("rte"), d, "validation", on_bad_row="skip")
  assert len(cols) == 2 and cols.skipped == 2
  assert cols.idx == [0, 3]  # positions in the file, as TFDS numbers rows
  assert cols.label == [0, 1]
  warnings = [r.getMessage() for r in caplog.records]
  assert len(warnings) == 1 and "skipped 2 malformed row(s)" in warnings[0]
  assert "dev.tsv:3" in warnings[0]


def test_stsb_score_must_be_a_number_in_range(tmp_path):
  header = (
    "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
  )
  _write(tmp_path / "STS-B" / "dev.tsv", header + "0\tg\tf\ty\t0\ts\ts\tA.\tB.\t7.5\n")
  with pytest.raises(tsv.MalformedRowError, match=r"dev\.tsv:2: .*outside \[0, 5\]"):
    glue_source.load_split(glue_spec.get_spec("stsb"), tmp_path, "validation")


def test_header_without_the_needed_column_is_an_error(tmp_path):
  _write(tmp_path / "SST-2" / "dev.tsv", "text\tlabel\nfine .\t1\n")
  with pytest.raises(tsv.MalformedRowError, match=r"dev\.tsv:1: .*'sentence'"):
    glue_source.load_split(glue_spec.get_spec("sst2"), tmp_path, "validation")


def test_invalid_utf8_names_the_line(tmp_path):
  p = tmp_path / "SST-2" / "dev.tsv"
  os.makedirs(p.parent)
  p.write_bytes(b"sentence\tlabel\nok\t1\nbad \xff byte\t0\n")
  with pytest.raises(tsv.MalformedRowError, match=r"dev\.tsv:3: .*UTF-8"):
    glue_source.load_split(glue_spec.get_spec("sst2"), tmp_path, "validation")


def test_missing_file_and_unknown_split(tmp_path):
  with pytest.raises(FileNotFoundError, match="dev.tsv"):
    glue_source.load_split(glue_spec.get_spec("sst2"), tmp_path, "validation")
  with pytest.raises(ValueError, match="'dev'"):
    glue_source.load_split(glue_spec.get_spec("sst2"), tmp_path, "dev")
  with pytest.raises(ValueError, match="on_bad_row"):
    glue_source.load_split(glue_spec.get_spec("sst2"), tmp_path, "validation", "ignore")


def test_test_split_files_have_headers_and_no_labels(tiny_glue_dir):
  cola = glue_source.load_split(glue_spec.get_spec("cola"), tiny_glue_dir, "test")
  assert len(cola) == 6 and set(cola.label) == {-1}
  sst2 = glue_source.load_split(glue_spec.get_spec("sst2"), tiny_glue_dir, "test")
  assert len(sst2) == 8 and set(sst2.label) == {-1}


def test_label_words_and_ids_map_to_tfds_ids(tiny_glue_dir):
  mnli = glue_source.load_split(glue_spec.get_spec("mnli"), tiny_glue_dir, "validation_matched")
  assert sorted(set(mnli.label)) == [0, 1, 2]
  assert set(mnli.text) == {"premise", "hypothesis"}
  qqp = glue_source.load_split(glue_spec.get_spec("qqp"), tiny_glue_dir, "train")
  assert sorted(set(qqp.label)) == [0, 1]
