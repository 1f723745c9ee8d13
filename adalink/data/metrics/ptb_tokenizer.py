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
from typing import Callable, Hashable, Mapping, Sequence

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

_NEWLINE_TOKEN = "\n"
_LINE_BREAKS = re.compile("[\n\r\u2028\u2029\u000b\u000c\u0085]")

# --- character classes (CoreNLP's JFlex names in comments) ----------------------------------------


def _bmp_class(pred: Callable[[str], bool]) -> str:
  """A regex character class of the BMP characters satisfying ``pred`` (JFlex works on UTF-16)."""
  ranges, start = [], None
  for cp in range(0x10000):
    ok = pred(chr(cp)) and not 0xD800 <= cp <= 0xDFFF
    if ok and start is None:
      start = cp
    elif not ok and start is not None:
      ranges.append((start, cp - 1))
      start = None
  if start is not None:
    ranges.append((start, 0xFFFF))
  parts = [
    re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges
  ]
  return "[" + "".join(parts) + "]"


_LETTER = _bmp_class(str.isalpha)  # [:letter:], Java's Character.isLetter
_UPPER = _bmp_class(str.isupper)  # Java's Character.isUpperCase
_DIGIT = r"\d"  # [:digit:], Java's Character.isDigit (Unicode Nd)
_ALNUM = rf"(?:{_LETTER}|{_DIGIT})"
_SPACE = r"[ \t\u00A0\u2000-\u200A\u3000]"
_NEWLINE = r"(?:\r\n|\r|\n|\u2028|\u2029|\u000B|\u000C|\u0085)"
_SPACENL = rf"(?:{_SPACE}|{_NEWLINE})"
# Markup: declarations/processing instructions, or tags whose attributes have quoted values.
_SGML = (
  r"<(?:[!?][A-Za-z-][^>\r\n]*|/?[A-Za-z][A-Za-z0-9:.\-]*(?: +[A-Za-z][A-Za-z0-9_:.\-]*"
  r"(?: *= *(?:'[^'\r\n]*'|\"[^\"\r\n]*\"))?)* */?)>"
)
# A sentence end after an abbreviation: space/newline, then space/newline, a capital or markup.
_SENTEND = rf"{_SPACENL}(?:{_SPACENL}|{_UPPER}|{_SGML})"
_APOS = r"(?:['\u0092\u2019]|&apos;)"
_APOSETC = rf"(?:{_APOS}|[`\u0091\u2018\u201B])"
_HYPHEN = r"[-_\u058A\u2010\u2011]"
# Letters plus the combining marks and other characters CoreNLP's WORD admits inside words.
_WORD_EXTRA = (
  "\u00ad\u0237-\u024f\u02c2-\u02c5\u02d2-\u02df\u02e5-\u02ff\u0300-\u036f"
  "\u0370-\u037d\u0384\u0385\u03cf\u03f6\u03fc-\u03ff\u0483-\u0487\u04cf"
  "\u04f6-\u04ff\u0510-\u0525\u055a-\u055f\u0591-\u05bd\u05bf\u05c1\u05c2"
  "\u05c4\u05c5\u05c7\u0615-\u061a\u063b-\u063f\u064b-\u065e\u0670"
  "\u06d6-\u06ef\u06fa-\u06ff\u070f\u0711\u0730-\u074f\u0750-\u077f"
  "\u07a6-\u07b1\u07ca-\u07f5\u07fa\u0900-\u0903\u093c\u093e-\u094e"
  "\u0951-\u0955\u0962-\u0963\u0981-\u0983\u09bc-\u09c4\u09c7\u09c8"
  "\u09cb-\u09cd\u09d7\u09e2\u09e3\u0a01-\u0a03\u0a3c\u0a3e-\u0a4f"
  "\u0a81-\u0a83\u0abc-\u0acf\u0b82\u0bbe-\u0bc2\u0bc6-\u0bc8\u0bca-\u0bcd"
  "\u0c01-\u0c03\u0c3e-\u0c56\u0d3e-\u0d44\u0d46-\u0d48\u0e30-\u0e3a"
  "\u0e47-\u0e4e\u0eb1-\u0ebc\u0ec8-\u0ecd"
)
_WORD_LETTER = rf"(?:{_LETTER}|&[aeiouAEIOU](?:acute|grave|uml);|[{_WORD_EXTRA}])"
# A word may carry digits after its first letter and inner . ! ? before a letter ("abc.def",
# "the?black"), as CoreNLP 3.4.1 tokenises them.
_WORD_PART = rf"{_WORD_LETTER}(?:{_WORD_LETTER}|{_DIGIT})*"
_WORD = rf"{_WORD_PART}(?:[.!?]{_WORD_PART})*"
_REDAUX = rf"{_APOS}(?:[msdMSD]|(?i:re|ve|ll))"
_SWORD = r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*"
_SREDAUX = rf"(?i:n){_APOSETC}(?i:t)"
_NUM = rf"(?:{_DIGIT}*(?:[.:,\u00AD\u066B\u066C]{_DIGIT}+)+|{_DIGIT}+)"
_NUMBER = rf"[-+]?{_NUM}"
_DATE = rf"{_DIGIT}{{1,2}}[-/]{_DIGIT}{{1,2}}[-/]{_DIGIT}{{2,4}}"
_FRAC = rf"(?:{_DIGIT}{{1,4}}[- \u00A0])?{_DIGIT}{{1,4}}(?:\\?/|\u2044){_DIGIT}{{1,4}}"
_THING = (
  rf"(?:[dDoOlL]{_APOSETC}{_ALNUM})?{_ALNUM}+"
  rf"(?:{_HYPHEN}(?:[dDoOlL]{_APOSETC}{_ALNUM})?{_ALNUM}+)*"
)
_THINGA = r"[A-Z]+(?:(?:[+&]|&amp;)[A-Z]+)+"
_THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
_ACRO = (
  r"(?:[A-Za-z](?:\.[A-Za-z])+|(?i:canada|sino|korean|eu|japan|non)-(?i:u\.s)"
  r"|(?i:u\.s\.-(?:u\.s\.s\.r|u\.k)))"
)
_HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:{_ACRO}\.|[A-Za-z0-9\u00AD]+))+"
_INSENTP = r"[,;:\u3001]"
_FILENAME = (
  rf"{_ALNUM}+\.(?i:bat|bmp|class|cgi|cpp|c|dll|docx|doc|exe|gif|gz|html|htm|h|jar|java"
  r"|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|xml|x|zip)"
)
_QUOTES = (
  r"(?:''|[`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094\u201E\u201F"
  rf"\u2039\u203A\u00AB\u00BB]{{1,2}}|{_APOS})"
)
_DBLQUOT = r'(?:"|&quot;)'

# Abbreviations as CoreNLP 3.4.1 treats them (probed against the jar the COCO code ships).
# Literal words are caseless; a leading [X] keeps that letter's case.
# ABBREV1: usually followed by lower case; before a capital the period is also a sentence end.
_ABBREV1 = (
  r"(?:(?i:jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
  r"|(?i:mon|tues|tue|wed|thurs|thu|fri)"
  r"|(?i:ala|ariz)|A(?i:z)|A(?i:rk)|(?i:calif|colo|conn|ct|dak)|D(?i:el)|(?i:fla|ga)"
  r"|I(?i:ll)|(?i:ind|kans|kan|ky)|L(?i:a)|M(?i:ass)|(?i:md|mich|minn)|M(?i:iss)"
  r"|(?i:mo|mont|neb|nev|okla)|O(?i:re)|P(?i:a)|(?i:penn|tenn)|T(?i:ex)|(?i:va|vt)"
  r"|W(?i:ash)|(?i:wisc|wis|wyo)"
  r"|(?i:inc|cos|co|corp|pptys|pptes|ppty|ppte|ptys|ptes|pty|pte|ltd|plc|rt|bancorp|bhd"
  r"|assn|univ|intl|sys)"
  r"|(?i:tel|est|ext|sq)"
  r"|(?i:jr|sr|bros|ed\.d|ph\.d|blvd|rd|esq)"
  r"|(?i:etc|al|seq|bldg))\."
)
_ABTITLE = (
  r"(?:(?i:mrs|mr|ms)|M(?i:iss)|(?i:drs|dr|profs|prof|sens|sen|reps|rep|attys|atty|lt"
  r"|col|gen|messrs|govs|gov|adm|rev|maj|sgt|cpl|pvt|capt|ste|st|ave|pres|lieut|hon"
  r"|brig|comdr|cmdr|pfc|spc|supts|supt|det|mt|ft|adj|adv|asst|assoc|ens|insp|mlle|mme"
  r"|msgr|sfc))"
)
# ABBREV4/ABBREV2: usually followed by a capital (titles and the like), never a sentence end.
# Alternatives are kept apart (a list) because a rule matches its longest alternative, which
# Python's leftmost-first alternation would not give.
_ABBREV4 = [
  _ACRO,
  r"(?i:a\.k\.a)",
  _ABTITLE,
  r"(?i:vs|alex|wm|jos|cie|cf|treas|ph)",
  r"(?i:invt|elec|natl|mfg|mtg|dept)",
  r"[A-Za-z]",
]
# ABBREV3: abbreviations only before a number ("No. 5", "pp. 12").
_ABBREV3 = r"(?i:ca|figs|fig|prop|nos|no|art|bldg|pp|op)\."
_ACRONYM_FOLLOWERS = (
  r"(?:A(?i:bout)|A(?i:ccording)|A(?i:dditionally)|A(?i:fter)|A(?i:n)|A|A(?i:s)|A(?i:t)"
  r"|B(?i:ut)|E(?i:arlier)|H(?i:e)|H(?i:er)|H(?i:ere)|H(?i:owever)|I(?i:f)|I(?i:n)|I(?i:t)"
  r"|L(?i:ast)|M(?i:any)|M(?i:ore)|M(?i:r)\.|M(?i:s)\.|N(?i:ow)|O(?i:nce)|O(?i:ne)|O(?i:ther)"
  r"|O(?i:ur)|S(?i:he)|S(?i:ince)|S(?i:o)|S(?i:ome)|S(?i:uch)|T(?i:hat)|T(?i:he)|T(?i:hen)"
  r"|T(?i:heir)|T(?i:here)|T(?i:hese)|T(?i:hey)|T(?i:his)|W(?i:e)|W(?i:hen)|W(?i:hile)|W(?i:hat)"
  r"|Y(?i:et)|Y(?i:ou))"
)
_APOWORD = [
  rf"{_APOS}(?i:n){_APOS}?",
  rf"[lLdDjJ]{_APOS}",
  rf"(?i:dunkin|somethin|ol){_APOS}",
  rf"{_APOS}(?i:em)",
  rf"[A-HJ-XZn]{_APOSETC}{_LETTER}{{2}}{_LETTER}*",
  rf"{_APOS}[2-9]0(?i:s)",
  rf"{_APOS}(?i:till|til)",
  rf"{_LETTER}+[aeiouyAEIOUY]{_APOSETC}[aeiouA-Z]{_LETTER}*",
  rf"{_APOS}(?i:cause)",
  r"(?i:cont'd)\.?",
  r"(?i:nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)",
]
_PHONE = (
  r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[- \u00A0])?[0-9]{2,4}[- \u00A0])"
  r"[0-9]{3,4}[- \u00A0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}"
  r"\.[0-9]{3,5}"
)
_SMILEY = r"[<>]?[:;=][-o*']?[()DPdpO\\{@|\[\]]"
_NOT_ALNUM = r"[^A-Za-z0-9]|\Z"  # a smiley must not run into a word or number
_ASIANSMILEY = (
  r"[\^x=~<>]\.\[\^x=~<>]|[-\^x=~<>']_[-\^x=~<>']|\([-\^x=~<>'][_.]?[-\^x=~<>']\)"
  r"|\([\^x=~<>']-[\^x=~<>'`]\)"
)
_MISCSYMBOL = (
  "[+%&~^|\\\\\u00a6\u00a7\u00a8\u00a9\u00ac\u00ae\u00af\u00b0-\u00b3\u00b4-\u00ba"
  "\u00d7\u00f7\u0387\u05be\u05c0\u05c3\u05c6\u05f3\u05f4\u0600-\u0603\u0606-\u060a"
  "\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d\u07f6\u07f7\u07f8\u0964\u0965"
  "\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044"
  "\u207a-\u207f\u208a-\u208e\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb"
  "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]"
)

_URL_PATH = r"(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?"

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


class _Rule:
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
_RULES = [
  _Rule("prog_langs", r"(?i:c\+\+|c#|f#)", _keep),
  _Rule("assimilation3", r"(?i:cannot|'twas)", _pushback(3)),
  _Rule("assimilation2", r"(?i:'tis|gonna|gotta|lemme|gimme|wanna)", _pushback(2)),
  _Rule("sgml", _SGML, _nbsp),
  _Rule("spmdash", r"&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", _const("--")),
  _Rule("spamp", r"(?i:&amp;)", _amp),
  _Rule("sppunc", r"&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", _keep),
  _Rule("word_before_redaux", _WORD, _no_soft_hyphens, context=_REDAUX),
  _Rule("sword_before_nt", _SWORD, _no_soft_hyphens, context=_SREDAUX),
  _Rule("word", _WORD, _no_soft_hyphens),
  _Rule("apoword", _APOWORD, _keep),
  _Rule("apoword2", rf"(?i:y){_APOS}", _keep, context=_LETTER),
  _Rule("fullurl", r"(?i:https?)://[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-]", _keep),
  _Rule(
    "likelyurl",
    [
      r"(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}" + _URL_PATH,
      # ",-_" is a range (U+002C..U+005F) in CoreNLP's class too: no digits, capitals, ":" ...
      r"(?:[^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+(?i:com|net|org|edu)" + _URL_PATH,
    ],
    _keep,
  ),
  _Rule(
    "email",
    r"(?:&lt;|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|(){}\u00A0]*@"
    r"(?:[^ \t\n\f\r\"<>|(){}.\u00A0]+\.)*[^ \t\n\f\r\"<>|(){}.\u00A0]+"
    r"(?:&gt;|>)?",
    _keep,
  ),
  _Rule("twitter", [r"@[a-zA-Z_][a-zA-Z_0-9]*", rf"#{_WORD_LETTER}+"], _keep),
  _Rule("redaux_before_nonletter", _REDAUX, _latex_quotes(False), context=r"[^A-Za-z]"),
  _Rule("sredaux", _SREDAUX, _latex_quotes(False)),
  _Rule("date", _DATE, _keep),
  _Rule("number", _NUMBER, _no_soft_hyphens),
  _Rule(
    "subsupnum",
    "[\u207a\u207b\u208a\u208b]?(?:[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+|[\u2080-\u2089]+)",
    _keep,
  ),
  _Rule("frac", _FRAC, _nbsp),
  _Rule("frac2", "[\u00bc\u00bd\u00be\u2153-\u215e]", _fraction_chars),
  _Rule(
    "tbspec",
    rf"-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|(?i:c\.d\.s|pro-|anti-)|(?i:s)(?:&|&amp;)"
    rf"(?i:p)-500|(?i:s)(?:&|&amp;)(?i:ls)|(?i:cap){_APOS}(?i:n)|(?i:c){_APOS}"
    rf"(?i:est)",
    _amp,
  ),
  _Rule("thing3", _THING3, _keep),
  _Rule("dolsign", r"[A-Z]*\$|#", _keep),  # capitals only: "US$" but "a" "$"
  _Rule(
    "dolsign2",
    "[\u00a2\u00a3\u00a4\u00a5\u0080\u20a0\u20ac\u060b\u0e3f\u20a4\uffe0\uffe1\uffe5\uffe6]",
    _normalize_currency,
  ),
  _Rule(
    "acronym_before_sentence",
    r"[A-Za-z](?:\.[A-Za-z])*\.",
    _acronym_before_sentence,
    context=rf"{_SPACENL}+(?:{_ACRONYM_FOLLOWERS}|{_SGML}){_SPACENL}",
  ),
  # "Co. Ltd", "Pty. Limited": no sentence end there.
  _Rule("co_ltd", r"(?:(?i:co)|(?i:pt)[eyEY])\.", _keep, context=rf"{_SPACE}(?i:ltd|lim)"),
  _Rule("abbrev1_sentend", _ABBREV1, _keep_and_rescan_period, context=_SENTEND),
  # Two characters of context (any, newlines included): so "MO.N y" is "MO." "N" but the
  # longer word "MO.NN" wins.
  _Rule("abbrev1", _ABBREV1, _keep, context=r"[\s\S]{2}"),
  # Only reachable within two characters of the end of the text, where CoreNLP adds a period.
  _Rule("abbrev1_at_end", _ABBREV1, _keep_and_rescan_period),
  _Rule("abbrev2", [a + r"\." for a in _ABBREV4], _keep),
  _Rule("abbrev3", _ABBREV3, _keep, context=rf"{_SPACENL}?{_DIGIT}"),
  _Rule("abbrev4", _ABBREV4, _keep, context=_SPACE),
  _Rule("acro", _ACRO, _keep, context=_SPACENL),
  _Rule("tbspec2", rf"{_APOS}[0-9][0-9]", _keep, context=_SPACENL),
  _Rule("filename", _FILENAME, _keep, context=rf"{_SPACENL}|[.?!,]"),
  _Rule("word_period", rf"{_WORD}\.", _no_soft_hyphens, context=_INSENTP),
  _Rule("phone", _PHONE, _phone),
  _Rule("dblquote_left", _DBLQUOT, _latex_quotes(True), context=r"[A-Za-z0-9$]"),
  _Rule("dblquote", _DBLQUOT, _latex_quotes(False)),
  _Rule("lessthan", r"<|&lt;", _const("<")),
  _Rule("greaterthan", r">|&gt;", _const(">")),
  _Rule("smiley", _SMILEY, _smiley, context=_NOT_ALNUM),
  _Rule("asiansmiley", _ASIANSMILEY, _smiley),
  _Rule("lcb", r"\{", _const("-LCB-")),
  _Rule("rcb", r"\}", _const("-RCB-")),
  _Rule("lsb", r"\[", _const("-LSB-")),
  _Rule("rsb", r"\]", _const("-RSB-")),
  _Rule("lrb", r"\(", _const("-LRB-")),
  _Rule("rrb", r"\)", _const("-RRB-")),
  _Rule("hyphens", r"-+", _hyphens),
  _Rule("ldots", r"\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026]", _const("...")),
  _Rule("fnmarks", r"@+|#+|_+", _keep),
  _Rule("asts", r"\*+|(?:\\\*){1,3}", _keep),
  _Rule("insentp", _INSENTP, _keep),
  _Rule("bang_question", r"[?!]+", _keep),
  _Rule("period_like", "[.\u00a1\u00bf\u037e\u0589\u061f\u06d4\u0700-\u0702\u07fa\u3002]", _keep),
  _Rule("equals", r"=", _keep),
  _Rule("slash", r"/", _keep),
  _Rule("hthing_period", rf"{_HTHING}\.", _no_soft_hyphens, context=_INSENTP),
  _Rule("hthing", _HTHING, _no_soft_hyphens),
  _Rule("thing_period", rf"{_THING}\.", _keep, context=_INSENTP),
  _Rule("thing", _THING, _keep),
  _Rule("thinga_period", rf"{_THINGA}\.", _amp, context=_INSENTP),
  _Rule("thinga", _THINGA, _amp),
  _Rule("left_single_quote", r"'", _latex_quotes(True), context=r"[A-Za-z][^ \t\n\r\u00A0]"),
  _Rule("redaux", _REDAUX, _latex_quotes(False)),
  _Rule("quotes", _QUOTES, _latex_quotes(False)),
  _Rule("fakeduckfeet", r"<<|>>", _keep),
  _Rule("miscsymbol", _MISCSYMBOL, _keep),
  _Rule("space", rf"\x00|{_SPACE}+|[\u200B\u200E\u200F\uFEFF]", _drop),
  _Rule("newline", _NEWLINE, _const(_NEWLINE_TOKEN)),
  _Rule("nbsp", r"&nbsp;", _drop),
]

# Plain ASCII words and digit strings followed by a space or line end are single tokens under
# every rule above (checked by the tests against the full scan), except the assimilations.
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
    for rule in _RULES:
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
    if tok == _NEWLINE_TOKEN:
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
