"""The token classes of Stanford CoreNLP 3.4.1's PTB lexer (its JFlex macros) as Python regexes,
for the rule table in ``ptb_rules``.

JFlex works on UTF-16 code units, so the Unicode classes (letters, capitals) cover the Basic
Multilingual Plane only: supplementary-plane characters (emoji) match none of them and the scanner
drops them, as CoreNLP does. The public names are the macros the rules use; the underscored ones
only build them. The exact grammar of CoreNLP 3.4.1 is not published with the jar: these classes
follow CoreNLP's lexer and were settled by running the 3.4.1 jar that pycocoevalcap ships (see
``ptb_tokenizer``).
"""

from __future__ import annotations

import re
from typing import Callable

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


LETTER = _bmp_class(str.isalpha)  # [:letter:], Java's Character.isLetter
_UPPER = _bmp_class(str.isupper)  # Java's Character.isUpperCase
DIGIT = r"\d"  # [:digit:], Java's Character.isDigit (Unicode Nd)
ALNUM = rf"(?:{LETTER}|{DIGIT})"
SPACE = r"[ \t\u00A0\u2000-\u200A\u3000]"
NEWLINE = r"(?:\r\n|\r|\n|\u2028|\u2029|\u000B|\u000C|\u0085)"
SPACENL = rf"(?:{SPACE}|{NEWLINE})"
# Markup: declarations/processing instructions, or tags whose attributes have quoted values.
SGML = (
  r"<(?:[!?][A-Za-z-][^>\r\n]*|/?[A-Za-z][A-Za-z0-9:.\-]*(?: +[A-Za-z][A-Za-z0-9_:.\-]*"
  r"(?: *= *(?:'[^'\r\n]*'|\"[^\"\r\n]*\"))?)* */?)>"
)
# A sentence end after an abbreviation: space/newline, then space/newline, a capital or markup.
SENTEND = rf"{SPACENL}(?:{SPACENL}|{_UPPER}|{SGML})"
APOS = r"(?:['\u0092\u2019]|&apos;)"
_APOSETC = rf"(?:{APOS}|[`\u0091\u2018\u201B])"
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
WORD_LETTER = rf"(?:{LETTER}|&[aeiouAEIOU](?:acute|grave|uml);|[{_WORD_EXTRA}])"
# A word may carry digits after its first letter and inner . ! ? before a letter ("abc.def",
# "the?black"), as CoreNLP 3.4.1 tokenises them.
_WORD_PART = rf"{WORD_LETTER}(?:{WORD_LETTER}|{DIGIT})*"
WORD = rf"{_WORD_PART}(?:[.!?]{_WORD_PART})*"
REDAUX = rf"{APOS}(?:[msdMSD]|(?i:re|ve|ll))"
SWORD = r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*"
SREDAUX = rf"(?i:n){_APOSETC}(?i:t)"
_NUM = rf"(?:{DIGIT}*(?:[.:,\u00AD\u066B\u066C]{DIGIT}+)+|{DIGIT}+)"
NUMBER = rf"[-+]?{_NUM}"
DATE = rf"{DIGIT}{{1,2}}[-/]{DIGIT}{{1,2}}[-/]{DIGIT}{{2,4}}"
FRAC = rf"(?:{DIGIT}{{1,4}}[- \u00A0])?{DIGIT}{{1,4}}(?:\\?/|\u2044){DIGIT}{{1,4}}"
THING = (
  rf"(?:[dDoOlL]{_APOSETC}{ALNUM})?{ALNUM}+"
  rf"(?:{_HYPHEN}(?:[dDoOlL]{_APOSETC}{ALNUM})?{ALNUM}+)*"
)
THINGA = r"[A-Z]+(?:(?:[+&]|&amp;)[A-Z]+)+"
THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
ACRO = (
  r"(?:[A-Za-z](?:\.[A-Za-z])+|(?i:canada|sino|korean|eu|japan|non)-(?i:u\.s)"
  r"|(?i:u\.s\.-(?:u\.s\.s\.r|u\.k)))"
)
HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:{ACRO}\.|[A-Za-z0-9\u00AD]+))+"
INSENTP = r"[,;:\u3001]"
FILENAME = (
  rf"{ALNUM}+\.(?i:bat|bmp|class|cgi|cpp|c|dll|docx|doc|exe|gif|gz|html|htm|h|jar|java"
  r"|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|xml|x|zip)"
)
QUOTES = (
  r"(?:''|[`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094\u201E\u201F"
  rf"\u2039\u203A\u00AB\u00BB]{{1,2}}|{APOS})"
)
DBLQUOT = r'(?:"|&quot;)'

# Abbreviations as CoreNLP 3.4.1 treats them (probed against the jar the COCO code ships).
# Literal words are caseless; a leading [X] keeps that letter's case.
# ABBREV1: usually followed by lower case; before a capital the period is also a sentence end.
ABBREV1 = (
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
ABBREV4 = [
  ACRO,
  r"(?i:a\.k\.a)",
  _ABTITLE,
  r"(?i:vs|alex|wm|jos|cie|cf|treas|ph)",
  r"(?i:invt|elec|natl|mfg|mtg|dept)",
  r"[A-Za-z]",
]
# ABBREV3: abbreviations only before a number ("No. 5", "pp. 12").
ABBREV3 = r"(?i:ca|figs|fig|prop|nos|no|art|bldg|pp|op)\."
ACRONYM_FOLLOWERS = (
  r"(?:A(?i:bout)|A(?i:ccording)|A(?i:dditionally)|A(?i:fter)|A(?i:n)|A|A(?i:s)|A(?i:t)"
  r"|B(?i:ut)|E(?i:arlier)|H(?i:e)|H(?i:er)|H(?i:ere)|H(?i:owever)|I(?i:f)|I(?i:n)|I(?i:t)"
  r"|L(?i:ast)|M(?i:any)|M(?i:ore)|M(?i:r)\.|M(?i:s)\.|N(?i:ow)|O(?i:nce)|O(?i:ne)|O(?i:ther)"
  r"|O(?i:ur)|S(?i:he)|S(?i:ince)|S(?i:o)|S(?i:ome)|S(?i:uch)|T(?i:hat)|T(?i:he)|T(?i:hen)"
  r"|T(?i:heir)|T(?i:here)|T(?i:hese)|T(?i:hey)|T(?i:his)|W(?i:e)|W(?i:hen)|W(?i:hile)|W(?i:hat)"
  r"|Y(?i:et)|Y(?i:ou))"
)
APOWORD = [
  rf"{APOS}(?i:n){APOS}?",
  rf"[lLdDjJ]{APOS}",
  rf"(?i:dunkin|somethin|ol){APOS}",
  rf"{APOS}(?i:em)",
  rf"[A-HJ-XZn]{_APOSETC}{LETTER}{{2}}{LETTER}*",
  rf"{APOS}[2-9]0(?i:s)",
  rf"{APOS}(?i:till|til)",
  rf"{LETTER}+[aeiouyAEIOUY]{_APOSETC}[aeiouA-Z]{LETTER}*",
  rf"{APOS}(?i:cause)",
  r"(?i:cont'd)\.?",
  r"(?i:nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)",
]
PHONE = (
  r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[- \u00A0])?[0-9]{2,4}[- \u00A0])"
  r"[0-9]{3,4}[- \u00A0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}"
  r"\.[0-9]{3,5}"
)
SMILEY = r"[<>]?[:;=][-o*']?[()DPdpO\\{@|\[\]]"
NOT_ALNUM = r"[^A-Za-z0-9]|\Z"  # a smiley must not run into a word or number
ASIANSMILEY = (
  r"[\^x=~<>]\.\[\^x=~<>]|[-\^x=~<>']_[-\^x=~<>']|\([-\^x=~<>'][_.]?[-\^x=~<>']\)"
  r"|\([\^x=~<>']-[\^x=~<>'`]\)"
)
MISCSYMBOL = (
  "[+%&~^|\\\\\u00a6\u00a7\u00a8\u00a9\u00ac\u00ae\u00af\u00b0-\u00b3\u00b4-\u00ba"
  "\u00d7\u00f7\u0387\u05be\u05c0\u05c3\u05c6\u05f3\u05f4\u0600-\u0603\u0606-\u060a"
  "\u060c\u0614\u061b\u061e\u066a\u066d\u0703-\u070d\u07f6\u07f7\u07f8\u0964\u0965"
  "\u0e4f\u1fbd\u2016\u2017\u2020-\u2023\u2030-\u2038\u203b\u203e-\u2042\u2044"
  "\u207a-\u207f\u208a-\u208e\u2100-\u214f\u2190-\u21ff\u2200-\u2bff\u3012\u30fb"
  "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]"
)

URL_PATH = r"(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?"
