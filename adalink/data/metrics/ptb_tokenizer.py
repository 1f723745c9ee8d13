"""Pure-Python PTB tokenisation as the COCO caption evaluation applies it (no Java).

The COCO code (``pycocoevalcap.tokenizer.PTBTokenizer``) writes all captions of a batch one per line,
runs Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines -lowerCase`` over the file and drops
punctuation tokens. This module reproduces that pipeline:

- a longest-match scanner over the same token classes as CoreNLP's lexer (words, contractions split
  as ``do n't`` / ``it 's``, numbers, dates, URLs, e-mails, abbreviations and acronyms, quotes turned
  into `` and '', brackets into -LRB- / -RRB- / -LSB- / -RSB- / -LCB- / -RCB-, ellipses, dashes ...),
  ties going to the earlier rule as in JFlex, with trailing context counted in the match length;
- tokens lower-cased after tokenising (so brackets become ``-lrb-`` and, as in the COCO code, are not
  removed by its upper-case punctuation list);
- the COCO punctuation list removed.

Captions are tokenised as lines of one text, as the COCO code does, because a few rules look past the
end of a line: an abbreviation such as "etc." ending a caption gets a separate "." when the next
caption starts with a capital letter, and an acronym such as "U.S." when it starts with one of
CoreNLP's sentence-opening words ("The", "It", ...). One deliberate difference: line-break characters
other than "\n" inside a caption become spaces (the COCO code lets them start a new line, which shifts
every later caption onto the wrong image).

The token classes are in ``ptb_grammar`` and the rules with their actions in ``ptb_rules``; this
module scans with them and applies the COCO code's line handling and punctuation list.

The exact grammar of CoreNLP 3.4.1 is not published with the jar; the rules here follow the token
classes of CoreNLP's lexer and were settled by running the 3.4.1 jar that pycocoevalcap ships. On
the 5,000 Flickr8k captions in ``shared/``, about 63,000 lines of GLUE sentences and prose, and
40,000 randomly assembled lines of tricky fragments (quotes, abbreviations, URLs, numbers, symbols,
soft hyphens, other scripts) the output equals Java's line for line. ``tests/data/
test_ptb_tokenizer.py`` pins tricky cases and, where Java is installed, re-checks the Flickr captions
against the real tool. Supplementary-plane characters (emoji) are dropped, as CoreNLP drops them.
"""

from __future__ import annotations

import re
from typing import Hashable, Mapping, Sequence

from adalink.data.metrics.ptb_rules import NEWLINE_TOKEN, RULES

# Tokens the COCO code removes after tokenising (its list, compared case-sensitively).
COCO_PUNCTUATION = frozenset(
  [
    "''",
    "'",
    "``",
    "`",
    "-LRB-",
    "-RRB-",
    "-LCB-",
    "-RCB-",
    ".",
    "?",
    "!",
    ",",
    ":",
    "-",
    "--",
    "...",
    ";",
  ]
)


_LINE_BREAKS = re.compile("[\n\r\u2028\u2029\u000b\u000c\u0085]")

# Plain ASCII words and digit strings followed by a space or line end are single tokens under
# every rule of ``RULES`` (checked by the tests against the full scan), except the assimilations.
_FAST_TOKEN = re.compile(r"[A-Za-z]+(?=[ \n]|\Z)|[0-9]+(?=\n|\Z| (?![0-9]))")
_SLOW_WORDS = frozenset(["cannot", "gonna", "gotta", "lemme", "gimme", "wanna"])


def _scan(text: str, fast: bool = True) -> list[str]:
  """CoreNLP-style tokens of ``text``; line breaks come out as "\\n" tokens."""
  tokens: list[str] = []
  pos = 0
  n = len(text)
  while pos < n:
    if text[pos] == " ":
      pos += 1
      continue
    if fast:
      m = _FAST_TOKEN.match(text, pos)
      if m is not None and m.group().lower() not in _SLOW_WORDS:
        tokens.append(m.group())
        pos = m.end()
        continue
    best_total, best_rule, best_text = 0, None, ""
    for rule in RULES:
      found = rule.match(text, pos)
      if found is not None and found[0] > best_total:
        best_total, best_text = found
        best_rule = rule
    if best_rule is None:
      pos += 1  # untokenisable character: CoreNLP deletes it
      continue
    new_tokens, consumed = best_rule.action(best_text)
    tokens.extend(new_tokens)
    pos += consumed
  return tokens


def tokenize_lines(lines: Sequence[str]) -> list[list[str]]:
  """Tokenises lines the way the COCO code does: joined by newlines, each line's tokens lower-cased.

  Punctuation is not removed here (see ``tokenize_captions``).
  """
  # CoreNLP also breaks lines at \r, U+2028 etc.; the COCO code only blanks "\n", so a caption
  # holding one of those shifts every later caption. Here they become spaces: one caption, one line.
  text = "\n".join(_LINE_BREAKS.sub(" ", line) for line in lines)
  out: list[list[str]] = [[]]
  for tok in _scan(text):
    if tok == NEWLINE_TOKEN:
      out.append([])
    else:
      out[-1].append(tok.lower())
  # Text ending in a newline would give a trailing empty line; there is none by construction.
  return out[: len(lines)] if lines else []


def tokenize(caption: str) -> str:
  """One caption as the COCO evaluation sees it: PTB tokens, lower-cased, punctuation dropped."""
  return _strip_punctuation(tokenize_lines([caption])[0])


def _strip_punctuation(tokens: Sequence[str]) -> str:
  return " ".join(t for t in tokens if t not in COCO_PUNCTUATION)


def tokenize_captions(captions: Mapping[Hashable, Sequence[str]]) -> dict[Hashable, list[str]]:
  """``{image: [caption, ...]}`` -> same structure of tokenised strings (as the COCO code's
  ``PTBTokenizer.tokenize``, which takes ``{image: [{"caption": str}, ...]}``)."""
  keys, lines = [], []
  for key, caps in captions.items():
    for c in caps:
      keys.append(key)
      lines.append(c)
  out: dict[Hashable, list[str]] = {k: [] for k in captions}
  for key, toks in zip(keys, tokenize_lines(lines)):
    out[key].append(_strip_punctuation(toks))
  return out
