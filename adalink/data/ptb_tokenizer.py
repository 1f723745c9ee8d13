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
end of a line (an abbreviation ending a caption keeps its period and a separate "." follows when the
next caption starts with a capital letter or at a blank line).

Agreement with the Java tool was measured on the 5,000 Flickr8k captions in ``shared/`` (all equal)
and on about 63,000 lines of GLUE sentences and prose; ``tests/data/test_ptb_tokenizer.py`` pins
tricky cases and, where Java is installed, re-checks the Flickr captions against the real tool.
Known gaps (rare in captions): CoreNLP's handling of SGML/XML entities, phone numbers, some Unicode
symbol classes and untokenisable control characters is approximated.
"""

from __future__ import annotations

import re
from typing import Callable, Hashable, Mapping, Sequence

# Tokens the COCO code removes after tokenising (its list, compared case-sensitively).
COCO_PUNCTUATION = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?",
                              "!", ",", ":", "-", "--", "...", ";"])

_NEWLINE_TOKEN = "\n"

# --- character classes (JFlex names in comments) -------------------------------------------------
_LETTER = r"[^\W\d_]"  # [:letter:]
_DIGIT = r"\d"  # [:digit:]
_ALNUM = r"[^\W_]"
_SPACE = r"[ \t\u00A0\u2000-\u200A\u3000]"
_NEWLINE = r"(?:\r\n|\r|\n|\u2028|\u2029|\u000B|\u000C|\u0085)"
_SPACENL = rf"(?:{_SPACE}|{_NEWLINE})"
_SGML = r"<\/?[A-Za-z!][^>\n]*>"
# A sentence end after an abbreviation: space/newline, then space/newline, a capital or markup.
_SENTEND = rf"{_SPACENL}(?:{_SPACENL}|[A-Z]|{_SGML})"
_APOS = r"(?:['\u0092\u2019]|&apos;)"
_APOSETC = rf"(?:{_APOS}|[\u0091\u2018\u201B])"
_HYPHEN = r"[-_\u058A\u2010\u2011]"
_WORD = (rf"(?:{_LETTER}|&[aeiouAEIOU](?:acute|grave|uml);|[\u00AD\u0237-\u024F\u02C2-\u02C5"
         r"\u02D2-\u02DF\u02E5-\u02FF\u0300-\u036F])+")
_REDAUX = rf"{_APOS}(?:[msdMSD]|(?i:re|ve|ll))"
_SWORD = r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*"
_SREDAUX = rf"(?i:n){_APOSETC}(?i:t)"
_NUM = rf"(?:{_DIGIT}*(?:[.:,\u00AD\u066B\u066C]{_DIGIT}+)+|{_DIGIT}+)"
_NUMBER = rf"[-+]?{_NUM}"
_DATE = rf"{_DIGIT}{{1,2}}[-/]{_DIGIT}{{1,2}}[-/]{_DIGIT}{{2,4}}"
_FRAC = rf"(?:{_DIGIT}{{1,4}}[- \u00A0])?{_DIGIT}{{1,4}}(?:\\?/|\u2044){_DIGIT}{{1,4}}"
_THING = (rf"(?:[dDoOlL]{_APOSETC}{_ALNUM})?{_ALNUM}+"
          rf"(?:{_HYPHEN}(?:[dDoOlL]{_APOSETC}{_ALNUM})?{_ALNUM}+)*")
_THINGA = r"[A-Z]+(?:(?:[+&]|&amp;)[A-Z]+)+"
_THING3 = r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}"
_ACRO = r"(?:[A-Za-z](?:\.[A-Za-z])+|(?i:canada|sino|korean|eu|japan|non)-(?i:u)\.(?i:s)" \
        r"|(?i:u)\.(?i:s)\.-(?:(?i:u)\.(?i:k)|(?i:u)\.(?i:s)\.(?i:s)\.(?i:r)))"
_HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:[A-Za-z0-9\u00AD]+|{_ACRO}\.))+"
_INSENTP = r"[,;:]"
_QUOTES = (rf"(?:{_APOS}|''|[`\u2018\u2019\u201A\u201B\u201C\u201D\u0091\u0092\u0093\u0094"
           r"\u201E\u201F\u2039\u203A\u00AB\u00BB]{1,2})")
_DBLQUOT = r'(?:"|&quot;)'

# Abbreviations (CoreNLP's lists; literal words are caseless, [X] classes keep one case).
_ABMONTH = r"(?i:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)"
_ABDAYS = r"(?i:mon|tue|tues|wed|thu|thurs|fri)"
_ABSTATE = (r"(?:(?i:ala|ariz)|A(?i:rk)|(?i:calif|colo|conn|dak|del|fla|ga)|I(?i:ll)|"
            r"(?i:ind|kans|kan|ky|la)|M(?i:ass)|(?i:md|mich|minn)|M(?i:iss)|(?i:mo|mont|neb|nev|"
            r"okla)|O(?i:re)|(?i:pa|penn|tenn|tex|va|vt)|W(?i:ash)|(?i:wisc|wis|wyo))")
_ABCOMP = r"(?i:inc|cos|co|corp|pptys|ppty|ptys|pty|ltd|plc|bancorp|dept|bhd|assn|univ|intl|sys)"
_ABNUM = r"(?i:nos|no|prop|ph|tel|est|ext|sq|ft)"
_ABPTIT = r"(?i:jr|sr|bros|ed\.d|ph\.d|blvd|rd|esq)"
_ABBREV1 = rf"(?:{_ABMONTH}|{_ABDAYS}|{_ABSTATE}|{_ABCOMP}|{_ABNUM}|{_ABPTIT}|(?i:etc|al|seq))\."
_ABTITLE = (r"(?:(?i:mr|mrs|ms)|M(?i:iss)|(?i:drs|dr|profs|prof|sens|sen|reps|rep|attys|atty|lt|"
            r"col|gen|messrs|govs|gov|adm|rev|maj|sgt|cpl|pvt|mt|capt|ste|st|ave|pres|lieut|hon|"
            r"brig|comdr|cmdr|pfc|spc|supts|supt|det))")
_ABCOMP2 = r"(?i:invt|elec|natl|mfg|mtg)"
_ABBREV4 = (rf"(?:[A-Za-z]|{_ABTITLE}|(?i:vs|alex|wm|jos|cie|a\.k\.a|cf)|TREAS|{_ACRO}|"
            rf"{_ABCOMP2})")
_ACRONYM_FOLLOWERS = ("About|According|Additionally|After|An|A|As|At|But|Earlier|He|Her|Here|"
                      "However|If|In|It|Last|Many|More|Mr\\.|Ms\\.|Now|Once|One|Other|Our|She|"
                      "Since|So|Some|Such|That|The|Then|There|These|They|This|We|When|While|What|"
                      "Yet|You")
_APOWORD = (rf"(?:{_APOS}(?i:n){_APOS}?|[lLdDjJ]{_APOS}|(?i:dunkin){_APOS}|(?i:somethin){_APOS}|"
            rf"(?i:ol){_APOS}|{_APOS}(?i:em)|[A-HJ-XZn]{_APOSETC}{_LETTER}{{2}}{_LETTER}*|"
            rf"{_APOS}[2-9]0(?i:s)|{_APOS}(?i:till|til)|{_LETTER}{_LETTER}*[aeiouyAEIOUY]{_APOSETC}"
            rf"[aeiouA-Z]{_LETTER}*|{_APOS}(?i:cause)|(?i:cont'd)\.?|(?i:nor'easter|c'mon|e'er|"
            r"s'mores|ev'ry|li'l|nat'l))")
_MISCSYMBOL = ("[\u00A6\u00A7\u00A8\u00A9\u00AC\u00AE\u00AF\u00B0-\u00BA\u00D7\u00F7\u0387"
               "\u2020-\u2023\u2032-\u2038\u2044\u207A-\u207F\u208A-\u208E\u2100-\u214F"
               "\u2190-\u21FF\u2200-\u22FF\u2300-\u23FF\u2600-\u26FF\u3012\u30FB"
               "\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65]")

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
    # CoreNLP keeps the abbreviation's period and also emits a sentence-final "." for it.
    return [text], len(text) - 1


def _latex_quotes(left: bool) -> Action:
    def act(text: str) -> tuple[list[str], int]:
        s = text
        if left:
            s = re.sub(r"&apos;|'", "`", s)
            s = re.sub(r'"|&quot;', "``", s)
        else:
            s = re.sub(r"&apos;|'", "'", s)
            s = re.sub(r'"|&quot;', "''", s)
        s = re.sub("[\u0091\u2018\u201B\u2039]", "`", s)
        s = re.sub("[\u0092\u2019\u203A]", "'", s)
        s = re.sub("[\u0093\u201C\u00AB]", "``", s)
        s = re.sub("[\u0094\u201D\u00BB]", "''", s)
        return [s], len(text)

    return act


def _hyphens(text: str) -> tuple[list[str], int]:
    return (["--"] if 3 <= len(text) <= 4 else [text]), len(text)


def _normalize_currency(text: str) -> tuple[list[str], int]:
    s = text.replace("\u00A2", "cents").replace("\u00A3", "#")
    s = re.sub("[\u0080\u00A4\u20A0\u20AC]", "$", s)
    return [s], len(text)


def _fraction_chars(text: str) -> tuple[list[str], int]:
    table = {"\u00BC": "1/4", "\u00BD": "1/2", "\u00BE": "3/4", "\u2153": "1/3"}
    return ["".join(table.get(c, c) for c in text)], len(text)


def _soft_hyphens_removed(text: str) -> tuple[list[str], int]:
    return [text.replace("\u00AD", "")], len(text)


def _amp(text: str) -> tuple[list[str], int]:
    return [re.sub(r"(?i)&amp;", "&", text)], len(text)


def _frac(text: str) -> tuple[list[str], int]:
    return [text.replace(" ", "\u00A0")], len(text)


class _Rule:
    __slots__ = ("name", "body", "context", "action")

    def __init__(self, name: str, body: str, action: Action, context: str | None = None):
        self.name = name
        self.body = re.compile(body)
        self.context = re.compile(context) if context is not None else None
        self.action = action


# In CoreNLP's order: on equal match lengths the earlier rule wins.
_RULES = [
    _Rule("assimilation3", r"(?i:cannot|'twas)", _pushback(3)),
    _Rule("assimilation2", rf"(?i:gonna|gotta|lemme|gimme|wanna)|{_APOS}(?i:tis)", _pushback(2)),
    _Rule("sgml", _SGML, _keep),
    _Rule("spmdash", r"&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", _const("--")),
    _Rule("spamp", r"(?i:&amp;)", _amp),
    _Rule("sppunc", r"&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", _keep),
    _Rule("word_before_redaux", _WORD, _soft_hyphens_removed, context=_REDAUX),
    _Rule("sword_before_nt", _SWORD, _soft_hyphens_removed, context=_SREDAUX),
    _Rule("word", _WORD, _soft_hyphens_removed),
    _Rule("apoword", _APOWORD, _keep),
    _Rule("apoword2", rf"(?i:y){_APOS}", _keep, context=_LETTER),
    _Rule("fullurl", r"(?i:https?)://[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-]", _keep),
    _Rule("likelyurl",
          r"(?:(?:(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|"
          r"(?:(?:[^ \t\n\f\r\"`'<>|.!?(){},\-_$]+\.)+(?i:com|net|org|edu)))"
          r"(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?", _keep),
    _Rule("email", r"[a-zA-Z0-9][^ \t\n\f\r\"<>|()\u00A0]*@(?:[^ \t\n\f\r\"<>|().\u00A0]+\.)+"
                   r"[a-zA-Z]{2,4}", _keep),
    _Rule("redaux_before_nonletter", _REDAUX, _latex_quotes(False), context=r"[^A-Za-z]|\Z"),
    _Rule("sredaux", _SREDAUX, _latex_quotes(False)),
    _Rule("date", _DATE, _keep),
    _Rule("number", _NUMBER, _soft_hyphens_removed),
    _Rule("subsupnum", "[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+"
                       "|[\u2080-\u2089]+)", _keep),
    _Rule("frac", _FRAC, _frac),
    _Rule("frac2", "[\u00BC\u00BD\u00BE\u2153-\u215E]", _fraction_chars),
    _Rule("tbspec", rf"-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|(?i:c\.d\.s|pro-|anti-)|(?i:s)(?:&|&amp;)"
                    rf"(?i:p)-500|(?i:s)(?:&|&amp;)(?i:ls)|(?i:cap){_APOS}(?i:n)|(?i:c){_APOS}"
                    rf"(?i:est)", _amp),
    _Rule("thing3", _THING3, _keep),
    _Rule("dolsign", r"[A-Za-z]*\$|#", _keep),
    _Rule("dolsign2", "[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0"
                      "\uFFE1\uFFE5\uFFE6]", _normalize_currency),
    _Rule("acronym_before_word", rf"{_ACRO}\.", _keep_and_rescan_period,
          context=rf"{_SPACE}+(?:{_ACRONYM_FOLLOWERS}){_SPACE}"),
    _Rule("abbrev1_sentend", _ABBREV1, _keep_and_rescan_period, context=_SENTEND),
    _Rule("abbrev1", _ABBREV1, _keep),
    _Rule("abbrev2", rf"{_ABBREV4}\.", _keep),
    _Rule("abbrev4", _ABBREV4, _keep, context=_SPACE),
    _Rule("acro", _ACRO, _keep, context=_SPACENL),
    _Rule("tbspec2", rf"{_APOS}[0-9][0-9]", _keep, context=_SPACENL),
    _Rule("word_period", rf"{_WORD}\.", _soft_hyphens_removed, context=_INSENTP),
    _Rule("phone", r"(?:\([0-9]{3}\)[ \u00A0]?|[0-9]{3}[- \u00A0.])[0-9]{3}[- \u00A0.][0-9]{4}",
          lambda t: ([t.replace(" ", "\u00A0").replace("(", "-LRB-").replace(")", "-RRB-")],
                     len(t))),
    _Rule("dblquote_left", _DBLQUOT, _latex_quotes(True), context=r"[A-Za-z0-9$]"),
    _Rule("dblquote", _DBLQUOT, _latex_quotes(False)),
    _Rule("plus", r"\+", _keep),
    _Rule("percent_amp", "[%&\u2030\u2031]", _keep),
    _Rule("tilde_caret", r"[~^]", _keep),
    _Rule("bar_backslash", "[|\\\\\u007f]", _drop),
    _Rule("lsb", r"\[", _const("-LSB-")),
    _Rule("rsb", r"\]", _const("-RSB-")),
    _Rule("lt_gt", r"[<>]|&lt;|&gt;", _keep),
    _Rule("lcb", r"\{", _const("-LCB-")),
    _Rule("rcb", r"\}", _const("-RCB-")),
    _Rule("lrb", r"\(", _const("-LRB-")),
    _Rule("rrb", r"\)", _const("-RRB-")),
    _Rule("hyphens", r"-+", _hyphens),
    _Rule("ldots", r"\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026]", _const("...")),
    _Rule("fnmarks", r"@+|#+|_+", _keep),
    _Rule("asts", r"\*+|(?:\\\*){1,3}", _keep),
    _Rule("insentp", _INSENTP, _keep),
    _Rule("bang_question", r"[?!]+", _keep),
    _Rule("period_like", "[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA]", _keep),
    _Rule("equals", r"=", _keep),
    _Rule("slash", r"/", _keep),
    _Rule("hthing_period", rf"{_HTHING}\.", _soft_hyphens_removed, context=_INSENTP),
    _Rule("hthing", _HTHING, _soft_hyphens_removed),
    _Rule("thing_period", rf"{_THING}\.", _keep, context=_INSENTP),
    _Rule("thing", _THING, _keep),
    _Rule("thinga_period", rf"{_THINGA}\.", _amp, context=_INSENTP),
    _Rule("thinga", _THINGA, _amp),
    _Rule("left_single_quote", r"'", _latex_quotes(True), context=r"[A-Za-z][^ \t\n\r\u00A0]"),
    _Rule("redaux", _REDAUX, _latex_quotes(False)),
    _Rule("quotes", _QUOTES, _latex_quotes(False)),
    _Rule("miscsymbol", _MISCSYMBOL, _keep),
    _Rule("space", rf"\x00|{_SPACE}+|[\u200B\u200E\u200F\uFEFF]", _drop),
    _Rule("newline", _NEWLINE, _const(_NEWLINE_TOKEN)),
    _Rule("nbsp", r"&nbsp;", _drop),
]


def _scan(text: str) -> list[str]:
    """CoreNLP-style tokens of ``text``; line breaks come out as "\\n" tokens."""
    tokens: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        best_total, best_rule, best_text = 0, None, ""
        for rule in _RULES:
            m = rule.body.match(text, pos)
            if m is None or m.end() == pos:
                continue
            total = m.end() - pos
            if rule.context is not None:
                c = rule.context.match(text, m.end())
                if c is None:
                    continue
                total += c.end() - m.end()
            if total > best_total:
                best_total, best_rule, best_text = total, rule, m.group()
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
    text = "\n".join(line.replace("\n", " ") for line in lines)
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
