"""VQA metrics for later tasks: VQA soft accuracy (with the VQA answer normalisation) and ANLS.

Pure Python, no TensorFlow.

VQA accuracy (Antol et al. 2015, as the official evaluation computes it): an answer's score is the
mean, over the 10 ways of leaving one human answer out, of ``min(1, matches among the other 9 / 3)``
(so 1, 2, 3 matching humans out of 10 give 0.3, 0.6, 0.9; 4 or more give 1). Answers are normalised
as the official script does: newlines/tabs to spaces; punctuation removed or turned into a space
(removed when it touches a space, or when the answer has a digit,digit comma); a period removed
unless a digit follows; lower-cased; number words zero..ten to digits; articles a/an/the dropped;
common apostrophe-less contractions restored ("dont" -> "don't").

One deliberate difference: the official script normalises only when the human answers disagree;
here the prediction and every human answer are always normalised (as most re-implementations do),
which differs only when all humans wrote the same answer and the prediction matches it after
normalisation but not before (the official script then scores 0).

ANLS (Biten et al. 2019): per question the best over references of ``1 - NL`` where NL is the
Levenshtein distance divided by the longer length (after lower-casing and collapsing whitespace),
counted as 0 when NL >= 0.5; the corpus value is the mean over questions.
"""

from __future__ import annotations

import re
from typing import Sequence

_PUNCTUATION = [
  ";",
  "/",
  "[",
  "]",
  '"',
  "{",
  "}",
  "(",
  ")",
  "=",
  "+",
  "\\",
  "_",
  "-",
  ">",
  "<",
  "@",
  "`",
  ",",
  "?",
  "!",
]
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_NUMBER_WORDS = {
  "none": "0",
  "zero": "0",
  "one": "1",
  "two": "2",
  "three": "3",
  "four": "4",
  "five": "5",
  "six": "6",
  "seven": "7",
  "eight": "8",
  "nine": "9",
  "ten": "10",
}
_ARTICLES = frozenset(["a", "an", "the"])

# Apostrophe-less spellings the VQA evaluation restores (written as "without:with" pairs).
_CONTRACTION_PAIRS = """
aint:ain't arent:aren't cant:can't couldve:could've couldnt:couldn't couldn'tve:couldn't've
couldnt've:couldn't've didnt:didn't doesnt:doesn't dont:don't hadnt:hadn't hadnt've:hadn't've
hadn'tve:hadn't've hasnt:hasn't havent:haven't hed:he'd hed've:he'd've he'dve:he'd've hes:he's
howd:how'd howll:how'll hows:how's Id've:I'd've I'dve:I'd've Im:I'm Ive:I've isnt:isn't itd:it'd
itd've:it'd've it'dve:it'd've itll:it'll let's:let's maam:ma'am mightnt:mightn't
mightnt've:mightn't've mightn'tve:mightn't've mightve:might've mustnt:mustn't mustve:must've
neednt:needn't notve:not've oclock:o'clock oughtnt:oughtn't ow's'at:'ow's'at 'ows'at:'ow's'at
'ow'sat:'ow's'at shant:shan't shed've:she'd've she'dve:she'd've she's:she's shouldve:should've
shouldnt:shouldn't shouldnt've:shouldn't've shouldn'tve:shouldn't've somebody'd:somebodyd
somebodyd've:somebody'd've somebody'dve:somebody'd've somebodyll:somebody'll somebodys:somebody's
someoned:someone'd someoned've:someone'd've someone'dve:someone'd've someonell:someone'll
someones:someone's somethingd:something'd somethingd've:something'd've
something'dve:something'd've somethingll:something'll thats:that's thered:there'd
thered've:there'd've there'dve:there'd've therere:there're theres:there's theyd:they'd
theyd've:they'd've they'dve:they'd've theyll:they'll theyre:they're theyve:they've twas:'twas
wasnt:wasn't wed've:we'd've we'dve:we'd've weve:we've werent:weren't whatll:what'll
whatre:what're whats:what's whatve:what've whens:when's whered:where'd wheres:where's
whereve:where've whod:who'd whod've:who'd've who'dve:who'd've wholl:who'll whos:who's
whove:who've whyll:why'll whyre:why're whys:why's wont:won't wouldve:would've wouldnt:wouldn't
wouldnt've:wouldn't've wouldn'tve:wouldn't've yall:y'all yall'll:y'all'll y'allll:y'all'll
yall'd've:y'all'd've y'alld've:y'all'd've y'all'dve:y'all'd've youd:you'd youd've:you'd've
you'dve:you'd've youll:you'll youre:you're youve:you've
"""
_CONTRACTIONS = dict(pair.split(":", 1) for pair in _CONTRACTION_PAIRS.split())


def _strip_punctuation(text: str) -> str:
  out = text
  has_digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
  for p in _PUNCTUATION:
    # Decided on the original text, as the official script does.
    if p + " " in text or " " + p in text or has_digit_comma:
      out = out.replace(p, "")
    else:
      out = out.replace(p, " ")
  return _PERIOD_NOT_BEFORE_DIGIT.sub("", out)


def _digits_and_articles(text: str) -> str:
  words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
  words = [w for w in words if w not in _ARTICLES]
  return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(answer: str) -> str:
  """The VQA evaluation's answer normalisation."""
  answer = answer.replace("\n", " ").replace("\t", " ").strip()
  return _digits_and_articles(_strip_punctuation(answer))


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
  """Soft accuracy of one prediction against the human answers (usually 10)."""
  if not answers:
    raise ValueError("VQA accuracy needs at least one human answer")
  pred = normalize_answer(prediction)
  gts = [normalize_answer(a) for a in answers]
  scores = []
  for i in range(len(gts)):
    matches = sum(1 for j, g in enumerate(gts) if j != i and g == pred)
    scores.append(min(1.0, matches / 3.0))
  return sum(scores) / len(scores)


def vqa_accuracy_metric(targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict:
  """seqio-style metric: {"vqa_accuracy": mean soft accuracy x 100}."""
  _check_lengths(targets, predictions)
  scores = [vqa_accuracy(p, t) for t, p in zip(targets, predictions)]
  return {"vqa_accuracy": 100.0 * sum(scores) / len(scores)}


def levenshtein(a: str, b: str) -> int:
  """Edit distance (insertions, deletions, substitutions all cost 1)."""
  if len(a) < len(b):
    a, b = b, a
  previous = list(range(len(b) + 1))
  for i, ca in enumerate(a, start=1):
    current = [i]
    for j, cb in enumerate(b, start=1):
      current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
    previous = current
  return previous[-1]


def _anls_normalize(text: str) -> str:
  return " ".join(text.lower().split())


def anls(prediction: str, answers: Sequence[str], threshold: float = 0.5) -> float:
  """Average-normalised-Levenshtein similarity of one prediction (best over the answers)."""
  if not answers:
    raise ValueError("ANLS needs at least one reference answer")
  pred = _anls_normalize(prediction)
  best = 0.0
  for answer in answers:
    gt = _anls_normalize(answer)
    longest = max(len(pred), len(gt))
    nl = 0.0 if longest == 0 else levenshtein(pred, gt) / longest
    best = max(best, 1.0 - nl if nl < threshold else 0.0)
  return best


def anls_metric(targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict:
  """seqio-style metric: {"anls": mean ANLS x 100}."""
  _check_lengths(targets, predictions)
  scores = [anls(p, t) for t, p in zip(targets, predictions)]
  return {"anls": 100.0 * sum(scores) / len(scores)}


def _check_lengths(targets, predictions) -> None:
  if len(targets) != len(predictions) or not targets:
    raise ValueError(
      f"need equal, non-zero numbers of targets and predictions, got "
      f"{len(targets)} and {len(predictions)}"
    )
