"""Vocabularies: the real T5 SentencePiece model, the byte vocabulary, and argument errors."""

import pytest

from adalink.data.pipeline import vocab


def test_sentencepiece_encodes_the_t5_docs_example(spiece_model):
  v = vocab.get_vocabulary("sentencepiece", spiece_model)
  ids = v.encode("translate English to German: The house is wonderful.")
  assert ids == [13959, 1566, 12, 2968, 10, 37, 629, 19, 1627, 5]
  assert v.encode("Hello world") == [8774, 296]
  assert v.decode(ids) == "translate English to German: The house is wonderful."
  assert v.vocab_size == 32000


def test_sentencepiece_extra_ids_extend_the_vocabulary(spiece_model):
  assert vocab.get_vocabulary("sentencepiece", spiece_model, extra_ids=100).vocab_size == 32100


def test_pad_and_eos_conventions(spiece_model):
  for v in (vocab.get_vocabulary("byte"), vocab.get_vocabulary("sentencepiece", spiece_model)):
    assert (v.pad_id, v.eos_id) == (vocab.PAD_ID, vocab.EOS_ID) == (0, 1)


def test_byte_vocabulary_round_trips_without_any_file():
  v = vocab.get_vocabulary("byte")
  ids = v.encode("héllo")
  assert ids == [b + 3 for b in "héllo".encode("utf-8")]  # 3 specials before the bytes
  assert v.decode(ids) == "héllo"
  assert v.vocab_size == 259
  assert vocab.get_vocabulary("byte", extra_ids=10).vocab_size == 269


def test_unknown_kind_is_a_value_error_naming_it():
  with pytest.raises(ValueError, match="'wordpiece'"):
    vocab.get_vocabulary("wordpiece")


def test_sentencepiece_without_a_path_is_a_value_error():
  with pytest.raises(ValueError, match="path"):
    vocab.get_vocabulary("sentencepiece")


def test_sentencepiece_with_a_missing_file_names_it(tmp_path):
  missing = tmp_path / "nope.model"
  with pytest.raises(ValueError, match="nope.model"):
    vocab.get_vocabulary("sentencepiece", missing)


def test_fingerprints_tell_vocabularies_apart(spiece_model):
  a = vocab.vocabulary_fingerprint(vocab.get_vocabulary("byte"))
  b = vocab.vocabulary_fingerprint(vocab.get_vocabulary("byte", extra_ids=5))
  c = vocab.vocabulary_fingerprint(vocab.get_vocabulary("sentencepiece", spiece_model))
  assert len({a, b, c}) == 3
  assert a == vocab.vocabulary_fingerprint(vocab.get_vocabulary("byte"))
