"""The rule table of the PTB scanner: CoreNLP 3.4.1's lexer rules in CoreNLP's order, each a regex
over the token classes of ``ptb_grammar`` with an optional trailing context, and an action that
turns the matched text into tokens (quotes into `` and '', brackets into -LRB- / -RRB- ...,
currency and fractions normalised, characters pushed back to be scanned again).

``ptb_tokenizer`` scans with ``RULES``: at each position the longest match wins, trailing context
counted in its length, and on equal lengths the earlier rule, as in JFlex.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from adalink.data.metrics import ptb_grammar as grammar

# The token the "newline" rule emits; ``ptb_tokenizer`` starts a new line's tokens at it.
NEWLINE_TOKEN = "\n"

Action = Callable[[str], tuple[list[str], int]]  # matched text -> (tokens, characters consumed)


def _keep(text: str) -> tuple[list[str], int]:
  return [text], len(text)


def _drop(text: str) -> tuple[list[str], int]:
  return [], len(text)


def _const(token: str) -> Action:
  return lambda text: ([token], len(text))


def _pushback(n: int) -> Action:
  # Emit all but the last n characters, which are scanned again.
  return lambda text: ([text[:-n]], len(text) - n)


def _keep_and_rescan_period(text: str) -> tuple[list[str], int]:
  # The abbreviation keeps its period and the period is scanned again as a sentence end.
  return [text], len(text) - 1


def _acronym_before_sentence(text: str) -> tuple[list[str], int]:
  # "U.S. The" -> "U.S." "."; a single letter ("I. The") -> "I" ".".
  return ([text[:-1]] if len(text) == 2 else [text]), len(text) - 1


def _latex_quotes(left: bool) -> Action:
  def act(text: str) -> tuple[list[str], int]:
    s = text
    if left:
      s = re.sub(r"&apos;|'", "`", s)
      s = re.sub(r'"|&quot;', "``", s)
    else:
      s = re.sub(r"&apos;|'", "'", s)
      s = re.sub(r'"|&quot;', "''", s)
    s = re.sub("[\u0091\u2018\u201b\u2039]", "`", s)
    s = re.sub("[\u0092\u2019\u203a]", "'", s)
    s = re.sub("[\u0093\u201c\u00ab]", "``", s)
    s = re.sub("[\u0094\u201d\u00bb]", "''", s)
    return [s], len(text)

  return act


def _hyphens(text: str) -> tuple[list[str], int]:
  return (["--"] if 3 <= len(text) <= 4 else [text]), len(text)


def _normalize_currency(text: str) -> tuple[list[str], int]:
  s = text.replace("\u00a2", "cents").replace("\u00a3", "#")
  s = re.sub("[\u0080\u00a4\u20a0\u20ac]", "$", s)
  return [s], len(text)


def _fraction_chars(text: str) -> tuple[list[str], int]:
  table = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3"}
  return ["".join(table.get(c, c) for c in text)], len(text)


def _no_soft_hyphens(text: str) -> tuple[list[str], int]:
  # Soft hyphens vanish inside a token; a token made only of them becomes "-" (as in CoreNLP).
  return [text.replace("\u00ad", "") or "-"], len(text)


def _amp(text: str) -> tuple[list[str], int]:
  return [re.sub(r"(?i)&amp;", "&", text)], len(text)


def _nbsp(text: str) -> tuple[list[str], int]:
  # CoreNLP keeps fractions/phone numbers with a space as one token, the space made non-breaking.
  return [text.replace(" ", "\u00a0")], len(text)


def _phone(text: str) -> tuple[list[str], int]:
  return [text.replace(" ", "\u00a0").replace("(", "-LRB-").replace(")", "-RRB-")], len(text)


def _smiley(text: str) -> tuple[list[str], int]:
  return [text.replace("(", "-LRB-").replace(")", "-RRB-")], len(text)


class Rule:
  """One lexer rule: alternatives (the longest wins), optional trailing context, an action."""

  __slots__ = ("name", "alternatives", "context", "action")

  def __init__(
    self, name: str, body: str | Sequence[str], action: Action, context: str | None = None
  ):
    self.name = name
    bodies = [body] if isinstance(body, str) else list(body)
    self.alternatives = [re.compile(b) for b in bodies]
    self.context = re.compile(context) if context is not None else None
    self.action = action

  def match(self, text: str, pos: int) -> tuple[int, str] | None:
    """(length including trailing context, matched text) of the longest fit, or None."""
    best = None
    for alt in self.alternatives:
      m = alt.match(text, pos)
      if m is None or m.end() == pos:
        continue
      total = m.end() - pos
      if self.context is not None:
        c = self.context.match(text, m.end())
        if c is None:
          continue
        total += c.end() - m.end()
      if best is None or total > best[0]:
        best = (total, m.group())
    return best


# In CoreNLP's order: on equal match lengths (trailing context included) the earlier rule wins.
RULES = [
  Rule("prog_langs", r"(?i:c\+\+|c#|f#)", _keep),
  Rule("assimilation3", r"(?i:cannot|'twas)", _pushback(3)),
  Rule("assimilation2", r"(?i:'tis|gonna|gotta|lemme|gimme|wanna)", _pushback(2)),
  Rule("sgml", grammar.SGML, _nbsp),
  Rule("spmdash", r"&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", _const("--")),
  Rule("spamp", r"(?i:&amp;)", _amp),
  Rule("sppunc", r"&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", _keep),
  Rule("word_before_redaux", grammar.WORD, _no_soft_hyphens, context=grammar.REDAUX),
  Rule("sword_before_nt", grammar.SWORD, _no_soft_hyphens, context=grammar.SREDAUX),
  Rule("word", grammar.WORD, _no_soft_hyphens),
  Rule("apoword", grammar.APOWORD, _keep),
  Rule("apoword2", rf"(?i:y){grammar.APOS}", _keep, context=grammar.LETTER),
  Rule("fullurl", r"(?i:https?)://[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-]", _keep),
  Rule(
    "likelyurl",
    [
      r"(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}" + grammar.URL_PATH,
      # ",-_" is a range (U+002C..U+005F) in CoreNLP's class too: no digits, capitals, ":" ...
      r"(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+(?i:com|net|org|edu)" + grammar.URL_PATH,
    ],
    _keep,
  ),
  Rule(
    "email",
    r"(?:&lt;|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|(){}\u00A0]*@"
    r"(?:[^ \t\n\f\r\"<>|(){}.\u00A0]+\.)*[^ \t\n\f\r\"<>|(){}.\u00A0]+"
    r"(?:&gt;|>)?",
    _keep,
  ),
  Rule("twitter", [r"@[a-zA-Z_][a-zA-Z_0-9]*", rf"#{grammar.WORD_LETTER}+"], _keep),
  Rule("redaux_before_nonletter", grammar.REDAUX, _latex_quotes(False), context=r"[^A-Za-z]"),
  Rule("sredaux", grammar.SREDAUX, _latex_quotes(False)),
  Rule("date", grammar.DATE, _keep),
  Rule("number", grammar.NUMBER, _no_soft_hyphens),
  Rule(
    "subsupnum",
    "[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)",
    _keep,
  ),
  Rule("frac", grammar.FRAC, _nbsp),
  Rule("frac2", "[\u00bc\u00bd\u00be\u2153-\u215e]", _fraction_chars),
  Rule(
    "tbspec",
    rf"-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|(?i:c\.d\.s|pro-|anti-)|(?i:s)(?:&|&amp;)"
    rf"(?i:p)-500|(?i:s)(?:&|&amp;)(?i:ls)|(?i:cap){grammar.APOS}(?i:n)|(?i:c){grammar.APOS}"
    rf"(?i:est)",
    _amp,
  ),
  Rule("thing3", grammar.THING3, _keep),
  Rule("dolsign", r"[A-Z]*\$|#", _keep),  # capitals only: "US$" but "a" "$"
  Rule(
    "dolsign2",
    "[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]",
    _normalize_currency,
  ),
  Rule(
    "acronym_before_sentence",
    r"[A-Za-z](?:\.[A-Za-z])*\.",
    _acronym_before_sentence,
    context=rf"{grammar.SPACENL}+(?:{grammar.ACRONYM_FOLLOWERS}|{grammar.SGML}){grammar.SPACENL}",
  ),
  # "Co. Ltd", "Pty. Limited": no sentence end there.
  Rule("co_ltd", r"(?:(?i:co)|(?i:pt)[eyEY])\.", _keep, context=rf"{grammar.SPACE}(?i:ltd|lim)"),
  Rule("abbrev1_sentend", grammar.ABBREV1, _keep_and_rescan_period, context=grammar.SENTEND),
  # Two characters of context (any, newlines included): so "MO.N y" is "MO." "N" but the
  # longer word "MO.NN" wins.
  Rule("abbrev1", grammar.ABBREV1, _keep, context=r"[\s\S]{2}"),
  # Only reachable within two characters of the end of the text, where CoreNLP adds a period.
  Rule("abbrev1_at_end", grammar.ABBREV1, _keep_and_rescan_period),
  Rule("abbrev2", [a + r"\." for a in grammar.ABBREV4], _keep),
  Rule("abbrev3", grammar.ABBREV3, _keep, context=rf"{grammar.SPACENL}?{grammar.DIGIT}"),
  Rule("abbrev4", grammar.ABBREV4, _keep, context=grammar.SPACE),
  Rule("acro", grammar.ACRO, _keep, context=grammar.SPACENL),
  Rule("tbspec2", rf"{grammar.APOS}[0-9][0-9]", _keep, context=grammar.SPACENL),
  Rule("filename", grammar.FILENAME, _keep, context=rf"{grammar.SPACENL}|[.?!,]"),
  Rule("word_period", rf"{grammar.WORD}\.", _no_soft_hyphens, context=grammar.INSENTP),
  Rule("phone", grammar.PHONE, _phone),
  Rule("dblquote_left", grammar.DBLQUOT, _latex_quotes(True), context=r"[A-Za-z0-9$]"),
  Rule("dblquote", grammar.DBLQUOT, _latex_quotes(False)),
  Rule("lessthan", r"<|&lt;", _const("<")),
  Rule("greaterthan", r">|&gt;", _const(">")),
  Rule("smiley", grammar.SMILEY, _smiley, context=grammar.NOT_ALNUM),
  Rule("asiansmiley", grammar.ASIANSMILEY, _smiley),
  Rule("lcb", r"\{", _const("-LCB-")),
  Rule("rcb", r"\}", _const("-RCB-")),
  Rule("lsb", r"\[", _const("-LSB-")),
  Rule("rsb", r"\]", _const("-RSB-")),
  Rule("lrb", r"\(", _const("-LRB-")),
  Rule("rrb", r"\)", _const("-RRB-")),
  Rule("hyphens", r"-+", _hyphens),
  Rule("ldots", r"\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026]", _const("...")),
  Rule("fnmarks", r"@+|#+|_+", _keep),
  Rule("asts", r"\*+|(?:\\\*){1,3}", _keep),
  Rule("insentp", grammar.INSENTP, _keep),
  Rule("bang_question", r"[?!]+", _keep),
  Rule("period_like", "[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002]", _keep),
  Rule("equals", r"=", _keep),
  Rule("slash", r"/", _keep),
  Rule("hthing_period", rf"{grammar.HTHING}\.", _no_soft_hyphens, context=grammar.INSENTP),
  Rule("hthing", grammar.HTHING, _no_soft_hyphens),
  Rule("thing_period", rf"{grammar.THING}\.", _keep, context=grammar.INSENTP),
  Rule("thing", grammar.THING, _keep),
  Rule("thinga_period", rf"{grammar.THINGA}\.", _amp, context=grammar.INSENTP),
  Rule("thinga", grammar.THINGA, _amp),
  Rule("left_single_quote", r"'", _latex_quotes(True), context=r"[A-Za-z][^ \t\n\r\u00A0]"),
  Rule("redaux", grammar.REDAUX, _latex_quotes(False)),
  Rule("quotes", grammar.QUOTES, _latex_quotes(False)),
  Rule("fakeduckfeet", r"<<|>>", _keep),
  Rule("miscsymbol", grammar.MISCSYMBOL, _keep),
  Rule("space", rf"\x00|{grammar.SPACE}+|[\u200B\u200E\u200F\uFEFF]", _drop),
  Rule("newline", grammar.NEWLINE, _const(NEWLINE_TOKEN)),
  Rule("nbsp", r"&nbsp;", _drop),
]
