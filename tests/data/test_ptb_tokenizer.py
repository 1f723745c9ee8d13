"""The pure-Python PTB tokeniser of the COCO caption evaluation.

Expected outputs were produced by the COCO code itself (pycocoevalcap 1.2's ``PTBTokenizer``, which
runs Stanford CoreNLP 3.4.1 under Java and drops punctuation) and are pinned here, so this test runs
without Java. Where Java is installed, a second test re-runs the real tool on the 5,000 Flickr8k
captions in shared/ and on these strings.
"""

import shutil

import pytest

from adalink.data.metrics import ptb_tokenizer

PINNED = [
  # possessives and plural possessives
  ("A man's dog, running fast!", "a man 's dog running fast"),
  ("The dogs' bones are on the grass.", "the dogs bones are on the grass"),
  (
    "Two children's toys lie in the children' s room .",
    "two children 's toys lie in the children s room",
  ),
  # hyphens and dashes
  (
    "A black-and-white dog jumps over a well-known fence.",
    "a black-and-white dog jumps over a well-known fence",
  ),
  ("A man -- wearing a hat - walks by.", "a man wearing a hat walks by"),
  ("50% off \u2014 today only \u2013 really", "50 % off today only really"),
  ("Twenty-one people.", "twenty-one people"),
  ("A skateboarder in mid-air.", "a skateboarder in mid-air"),
  (
    "A woman in a T-shirt and jeans ; another in a skirt : both smile",
    "a woman in a t-shirt and jeans another in a skirt both smile",
  ),
  # numbers, times, dates, money, fractions (CoreNLP joins "2 1/2" with a no-break space)
  (
    "It's 5:30pm on 12/25/2010 and it costs $5.50, or 1,000 yen.",
    "it 's 5:30 pm on 12/25/2010 and it costs $ 5.50 or 1,000 yen",
  ),
  ("There are 3.5 apples and 2 1/2 pears.", "there are 3.5 apples and 2\u00a01/2 pears"),
  ("A 3-D movie in the 1990s with '90s music.", "a 3-d movie in the 1990s with '90s music"),
  (
    "A man wearing a #23 jersey at the @home event",
    "a man wearing a # 23 jersey at the @home event",
  ),
  # quotes and brackets (brackets survive, lower-cased, as in the COCO code)
  (
    "He said \"hello\" and 'goodbye' to the U.S. soldiers.",
    "he said hello and goodbye to the u.s. soldiers",
  ),
  ('The sign reads "STOP".', "the sign reads stop"),
  (
    "\u201cCurly quotes\u201d and \u2018single ones\u2019 here.",
    "curly quotes and single ones here",
  ),
  (
    "A dog (brown) sits near a {red} ball [left].",
    "a dog -lrb- brown -rrb- sits near a -lcb- red -rcb- ball -lsb- left -rsb-",
  ),
  ("A man is cooking :) at home", "a man is cooking :-rrb- at home"),
  # contractions and assimilations
  (
    "Don't, can't, won't, I'm, they're, we've, you'll, he'd!",
    "do n't ca n't wo n't i 'm they 're we 've you 'll he 'd",
  ),
  ("I cannot believe we're gonna win.", "i can not believe we 're gon na win"),
  ("Rock'n'roll o'clock y'all", "rock 'n' roll o'clock y' all"),
  ("A dog's ball & a cat's toy; AT&T and Q&A.", "a dog 's ball & a cat 's toy at&t and q&a"),
  # abbreviations and acronyms
  (
    "People at the St. Patrick's Day parade in N.Y.C. with Dr. Smith",
    "people at the st. patrick 's day parade in n.y.c. with dr. smith",
  ),
  (
    "A boy is playing at 4 p.m. The sun is setting.",
    "a boy is playing at 4 p.m. the sun is setting",
  ),
  ("Mr. and Mrs. Jones visit Washington D.C.", "mr. and mrs. jones visit washington d.c."),
  ("end of caption etc.", "end of caption etc."),
  ("Item No. 5 on p. 12", "item no. 5 on p. 12"),
  ("The Co. Ltd. building", "the co. ltd. building"),
  ("A. B. C.", "a. b. c."),
  ("x.y.z abc.def a1.b2", "x.y.z abc.def a1.b2"),
  # URLs, e-mail, other scripts, spacing, punctuation only
  (
    "Visit http://www.example.com/page or www.example.org, email foo@bar.com.",
    "visit http://www.example.com/page or www.example.org email foo@bar.com",
  ),
  (
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 S\u00e3o Paulo.",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 s\u00e3o paulo",
  ),
  ("Wait... what?! Really??", "wait what ?! really ??"),
  ("A   man   with   extra   spaces", "a man with extra spaces"),
  ("Tab\tseparated\twords", "tab separated words"),
  ("...", ""),
  ("", ""),
]


@pytest.mark.parametrize("text,expected", PINNED)
def test_pinned_outputs_of_the_coco_tokenizer(text, expected):
  assert ptb_tokenizer.tokenize(text) == expected
  assert ptb_tokenizer.tokenize_captions({"img": [text]}) == {"img": [expected]}


def test_raw_tokens_before_punctuation_removal():
  lines = ptb_tokenizer.tokenize_lines(['He said "hi" (twice).', "It's the U.S.", "The end"])
  assert lines == [
    ["he", "said", "``", "hi", "''", "-lrb-", "twice", "-rrb-", "."],
    ["it", "'s", "the", "u.s.", "."],
    ["the", "end"],
  ]


def test_context_crosses_lines_as_in_the_coco_pipeline():
  # An acronym ending a caption gets an extra "." only if the next caption starts with one of
  # CoreNLP's sentence-opening words; the COCO code tokenises all captions as one text.
  assert ptb_tokenizer.tokenize_lines(["in the U.S.", "The dog"])[0] == ["in", "the", "u.s.", "."]
  assert ptb_tokenizer.tokenize_lines(["in the U.S.", "A dog"])[0] == ["in", "the", "u.s.", "."]
  assert ptb_tokenizer.tokenize_lines(["in the U.S.", "dogs"])[0] == ["in", "the", "u.s."]


def test_fast_path_agrees_with_the_full_scanner():
  texts = [t for t, _ in PINNED] + ["cannot gonna 1 1/2 555 123 4567 word", "a b\nc 12 d"]
  for t in texts:
    assert ptb_tokenizer._scan(t, fast=True) == ptb_tokenizer._scan(t, fast=False), t


def test_fast_path_agrees_on_real_captions(flickr_dir):
  import json

  data = json.loads((flickr_dir / "captions.json").read_text())
  # The first 1,000 captions keep this quick; the fast path only skips rule matching.
  text = "\n".join(c for im in data["images"][:200] for c in im["captions"])
  assert ptb_tokenizer._scan(text, fast=True) == ptb_tokenizer._scan(text, fast=False)


def _java_tokenizer_or_skip():
  if shutil.which("java") is None:
    pytest.skip(
      "Java is not installed: the real CoreNLP tokenizer cannot run here "
      "(the pinned cases above still check the behaviour)"
    )
  tok = pytest.importorskip(
    "pycocoevalcap.tokenizer.ptbtokenizer",
    reason="pycocoevalcap (test-only dependency) is not installed",
  )
  return tok.PTBTokenizer()


def test_equals_the_java_tokenizer_on_all_flickr_captions(flickr_dir):
  import json

  java = _java_tokenizer_or_skip()
  data = json.loads((flickr_dir / "captions.json").read_text())
  caps = {im["flickr8k_id"]: im["captions"] for im in data["images"]}
  expected = java.tokenize({k: [{"caption": c} for c in v] for k, v in caps.items()})
  ours = ptb_tokenizer.tokenize_captions(caps)
  differing = [(k, i) for k in caps for i in range(len(caps[k])) if ours[k][i] != expected[k][i]]
  print(f"\n{sum(map(len, caps.values()))} captions, {len(differing)} differ from Java")
  assert not differing, differing[:5]


def test_equals_the_java_tokenizer_on_the_pinned_strings():
  java = _java_tokenizer_or_skip()
  caps = {i: [t] for i, (t, _) in enumerate(PINNED)}
  expected = java.tokenize({k: [{"caption": c} for c in v] for k, v in caps.items()})
  assert ptb_tokenizer.tokenize_captions(caps) == expected
