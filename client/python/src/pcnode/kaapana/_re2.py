"""target_regex as pcnode's daemon reads it: Go's RE2 syntax (regexp/syntax
with Perl flags) and the size limits of daemon/spec/limits.go.

Python's ``re`` accepts what RE2 refuses (look-around, back-references,
possessive repeats) and refuses what RE2 accepts (``\\pL``, ``[[:alpha:]]``,
``\\z``, ``(?U)``), so the expression is parsed here by a port of Go's parser
(regexp/syntax/parse.go of Go 1.26): the same grammar, the same errors, and the
same parse-time factoring of alternations, so that the program size Go
compiles to (compile.go after simplify.go) can be counted against
``max_regex_insts``. The one simplification: character classes are compared
by their spelling, not their ranges, when Go factors a common leading class out
of alternatives, so ``[ab]x|[a-b]y`` counts one instruction more than in Go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from pcnode.kaapana._spec import Limits, blen, clip, go_quote

# Ops.
LIT, CLS, ANY, EMPTYW, EMPTY, NOMATCH, CAP, STAR, PLUS, QUEST, REPEAT, CONCAT, ALT = range(13)

_MAX_RUNE = 0x10FFFF

# The names \p{...} accepts, as Go 1.26's unicodeTable reads them (after its
# canonicalName: underscores, dashes and spaces dropped, first letter upper,
# the rest lower).
_UNICODE_NAMES = frozenset(
    """Adlam Ahom Any Arabic Armenian Ascii Assigned Avestan Balinese Bamum Batak Bengali Bhaiksuki Bopomofo
    Brahmi Braille Buginese Buhid C Carian Casedletter Cc Cf Chakma Cham Cherokee Chorasmian Closepunctuation Cn
    Cntrl Co Combiningmark Common Connectorpunctuation Control Coptic Cs Cuneiform Currencysymbol Cypriot Cyrillic
    Dashpunctuation Decimalnumber Deseret Devanagari Digit Dogra Duployan Elbasan Elymaic Enclosingmark Ethiopic
    Finalpunctuation Format Georgian Glagolitic Gothic Grantha Greek Gujarati Gurmukhi Han Hangul Hanunoo Hatran
    Hebrew Hiragana Inherited Initialpunctuation Javanese Kaithi Kannada Katakana Kawi Kharoshthi Khmer Khojki
    Khudawadi L Lao Latin Lc Lepcha Letter Letternumber Limbu Lineseparator Lisu Ll Lm Lo Lowercaseletter Lt Lu
    Lycian Lydian M Mahajani Makasar Malayalam Mandaic Manichaean Marchen Mark Mathsymbol Mc Me Medefaidrin Miao Mn
    Modi Modifierletter Modifiersymbol Mongolian Mro Multani Myanmar N Nabataean Nandinagari Nd Newa Nko Nl No
    Nonspacingmark Number Nushu Ogham Openpunctuation Oriya Osage Osmanya Other Otherletter Othernumber
    Otherpunctuation Othersymbol P Palmyrene Paragraphseparator Pc Pd Pe Pf Phoenician Pi Po Privateuse Ps Punct
    Punctuation Rejang Runic S Samaritan Saurashtra Sc Separator Sharada Shavian Siddham Sinhala Sk Sm So Sogdian
    Soyombo Spaceseparator Spacingmark Sundanese Surrogate Symbol Syriac Tagalog Tagbanwa Takri Tamil Tangsa Tangut
    Telugu Thaana Thai Tibetan Tifinagh Tirhuta Titlecaseletter Toto Ugaritic Unassigned Uppercaseletter Vai
    Vithkuqi Wancho Yezidi Yi Z Zl Zp Zs""".split()
)

_POSIX = frozenset(
    "alnum alpha ascii blank cntrl digit graph lower print punct space upper word xdigit".split()
)


class ReError(Exception):
    """A syntax error, with Go's error code text."""

    def __init__(self, code: str, expr: str):
        super().__init__(f"{code}: {go_quote(clip(expr))}")
        self.code = code
        self.expr = expr


@dataclass(eq=False)
class Re:
    op: int
    subs: list[Re] = field(default_factory=list)
    runes: str = ""  # LIT: the runes; CLS/ANY/EMPTYW: a key for equality
    fold: bool = False
    min: int = 0
    max: int = 0
    greedy: bool = True

    def equal(self, o: Optional[Re]) -> bool:
        if o is None or self.op != o.op:
            return False
        if self.op in (LIT, CLS, ANY, EMPTYW):
            return self.runes == o.runes and self.fold == o.fold
        if self.op in (STAR, PLUS, QUEST):
            return self.greedy == o.greedy and self.subs[0].equal(o.subs[0])
        if self.op == REPEAT:
            return (self.greedy, self.min, self.max) == (o.greedy, o.min, o.max) and self.subs[0].equal(o.subs[0])
        if len(self.subs) != len(o.subs):
            return False
        return all(a.equal(b) for a, b in zip(self.subs, o.subs))


def _is_char_class(r: Re) -> bool:
    return (r.op == LIT and len(r.runes) == 1) or r.op in (CLS, ANY)


def _isalnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _unhex(c: str) -> int:
    if c.isascii() and c in "0123456789abcdefABCDEF":
        return int(c, 16)
    return -1


def _canonical_name(name: str) -> str:
    out = []
    first = True
    for c in name:
        if c in "_- ":
            continue
        if first:
            if "a" <= c <= "z":
                c = c.upper()
            first = False
        elif "A" <= c <= "Z":
            c = c.lower()
        out.append(c)
    return "".join(out)


class _Frame:
    def __init__(self, cap: bool, flags: dict[str, bool]):
        self.cap = cap
        self.flags = flags
        self.alts: list[Re] = []
        self.items: list[Re] = []


class _Parser:
    def __init__(self, s: str):
        self.whole = s
        self.flags = {"i": False, "m": False, "s": False, "U": False}

    # --- the concatenation being built -----------------------------------

    def _merge_top(self, items: list[Re]) -> None:
        if len(items) >= 2 and items[-1].op == LIT and items[-2].op == LIT and items[-1].fold == items[-2].fold:
            top = items.pop()
            items[-1] = Re(LIT, runes=items[-1].runes + top.runes, fold=top.fold)

    def push(self, fr: _Frame, r: Re) -> None:
        self._merge_top(fr.items)
        fr.items.append(r)

    def literal(self, fr: _Frame, c: str) -> None:
        self.push(fr, Re(LIT, runes=c, fold=self.flags["i"]))

    def concat(self, fr: _Frame) -> Re:
        self._merge_top(fr.items)
        items, fr.items = fr.items, []
        if not items:
            return Re(EMPTY)
        return _collapse(items, CONCAT)

    # --- escapes and classes --------------------------------------------

    def escape(self, t: str, i: int) -> tuple[int, int]:
        """Go's parseEscape at t[i] == '\\': the rune and the index after it."""
        start = i
        i += 1
        if i >= len(t):
            raise ReError("trailing backslash at end of expression", "")
        c = t[i]
        i += 1
        if c in "1234567":
            if i < len(t) and "0" <= t[i] <= "7":
                c = "0"
                i -= 1
                # fall through to octal with the first digit re-read
                r = int(t[i])
                i += 1
                for _ in range(2):
                    if i < len(t) and "0" <= t[i] <= "7":
                        r = r * 8 + int(t[i])
                        i += 1
                    else:
                        break
                return r, i
            raise ReError("invalid escape sequence", t[start:i])
        if c == "0":
            r = 0
            for _ in range(2):
                if i < len(t) and "0" <= t[i] <= "7":
                    r = r * 8 + int(t[i])
                    i += 1
                else:
                    break
            return r, i
        if c == "x":
            if i >= len(t):
                raise ReError("invalid escape sequence", t[start:i])
            c = t[i]
            i += 1
            if c == "{":
                nhex = 0
                r = 0
                while True:
                    if i >= len(t):
                        raise ReError("invalid escape sequence", t[start:i])
                    c = t[i]
                    i += 1
                    if c == "}":
                        break
                    v = _unhex(c)
                    if v < 0:
                        raise ReError("invalid escape sequence", t[start:i])
                    r = r * 16 + v
                    if r > _MAX_RUNE:
                        raise ReError("invalid escape sequence", t[start:i])
                    nhex += 1
                if nhex == 0:
                    raise ReError("invalid escape sequence", t[start:i])
                return r, i
            x = _unhex(c)
            if i >= len(t):
                # Go's nextRune on "" yields RuneError, not a hex digit.
                raise ReError("invalid escape sequence", t[start:i])
            y = _unhex(t[i])
            i += 1
            if x < 0 or y < 0:
                raise ReError("invalid escape sequence", t[start:i])
            return x * 16 + y, i
        simple = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if c in simple:
            return simple[c], i
        if ord(c) < 0x80 and not _isalnum(c):
            return ord(c), i
        raise ReError("invalid escape sequence", t[start:i])

    def unicode_class(self, t: str, i: int) -> Optional[int]:
        """Go's parseUnicodeClass at t[i:]: the index after it, or None when t[i:] is not \\p or \\P."""
        if i + 1 >= len(t) or t[i] != "\\" or t[i + 1] not in "pP":
            return None
        j = i + 2
        if j < len(t) and t[j] == "{":
            end = t.find("}", i)
            if end < 0:
                raise ReError("invalid character class range", t[i:])
            seq, name, nxt = t[i : end + 1], t[j + 1 : end], end + 1
        else:
            nxt = min(j + 1, len(t))
            seq = t[i:nxt]
            name = t[j:nxt]
        if name.startswith("^"):
            name = name[1:]
        if _canonical_name(name) not in _UNICODE_NAMES:
            raise ReError("invalid character class range", seq)
        return nxt

    def perl_class(self, t: str, i: int) -> Optional[int]:
        if i + 1 < len(t) and t[i] == "\\" and t[i + 1] in "dDsSwW":
            return i + 2
        return None

    def klass(self, t: str, i: int) -> tuple[Re, int]:
        """Go's parseClass at t[i] == '['."""
        start = i
        i += 1
        if i < len(t) and t[i] == "^":
            i += 1
        first = True
        while i >= len(t) or t[i] != "]" or first:
            first = False
            if i + 2 < len(t) and t[i] == "[" and t[i + 1] == ":":
                k = t.find(":]", i + 2)
                if k >= 0:
                    name = t[i + 2 : k]
                    if name.startswith("^"):
                        name = name[1:]
                    if name not in _POSIX:
                        raise ReError("invalid character class range", t[i : k + 2])
                    i = k + 2
                    continue
            nxt = self.unicode_class(t, i)
            if nxt is not None:
                i = nxt
                continue
            nxt = self.perl_class(t, i)
            if nxt is not None:
                i = nxt
                continue
            rng = i
            lo, i = self.class_char(t, i, start)
            if i + 1 < len(t) and t[i] == "-" and t[i + 1] != "]":
                i += 1
                hi, i = self.class_char(t, i, start)
                if hi < lo:
                    raise ReError("invalid character class range", t[rng:i])
        i += 1  # the ]
        return Re(CLS, runes=t[start:i] + ("/i" if self.flags["i"] else "")), i

    def class_char(self, t: str, i: int, start: int) -> tuple[int, int]:
        if i >= len(t):
            raise ReError("missing closing ]", t[start:])
        if t[i] == "\\":
            return self.escape(t, i)
        return ord(t[i]), i + 1

    # --- groups -----------------------------------------------------------

    def perl_flags(self, t: str, i: int, stack: list[_Frame]) -> int:
        """Go's parsePerlFlags at t[i:] == "(?...": the index after the group's opening."""
        s = t[i:]
        starts_p = len(s) > 4 and s[2] == "P" and s[3] == "<"
        starts_name = len(s) > 3 and s[2] == "<"
        if starts_p or starts_name:
            begin = 4 if starts_p else 3
            end = s.find(">")
            if end < 0:
                raise ReError("invalid named capture", s)
            name = s[begin:end]
            if name == "" or not all(c == "_" or _isalnum(c) for c in name):
                raise ReError("invalid named capture", s[: end + 1])
            stack.append(_Frame(True, dict(self.flags)))
            return i + end + 1
        j = i + 2
        flags = dict(self.flags)
        sign = 1
        saw = False
        while j < len(t):
            c = t[j]
            j += 1
            if c in "imsU":
                # 'm' clears OneLine, which is the same as setting multi-line.
                flags[c] = sign > 0
                saw = True
            elif c == "-":
                if sign < 0:
                    break
                sign = -1
                saw = False
            elif c in ":)":
                if sign < 0 and not saw:
                    break
                if c == ":":
                    stack.append(_Frame(False, dict(self.flags)))
                self.flags = flags
                return j
            else:
                break
        raise ReError("invalid or unsupported Perl syntax", t[i:j])

    def close_group(self, stack: list[_Frame]) -> None:
        fr = stack[-1]
        node = self.alternate(fr)
        if len(stack) < 2:
            raise ReError("unexpected )", self.whole)
        stack.pop()
        self.flags = fr.flags
        self.push(stack[-1], Re(CAP, [node]) if fr.cap else node)

    def add_alt(self, fr: _Frame, x: Re) -> None:
        """Ends an alternative; like Go's swapVerticalBar, two single characters
        or classes in a row become one class at once."""
        if fr.alts and _is_char_class(fr.alts[-1]) and _is_char_class(x):
            fr.alts[-1] = Re(CLS, runes=fr.alts[-1].runes + "|" + x.runes)
        else:
            fr.alts.append(x)

    def alternate(self, fr: _Frame) -> Re:
        self.add_alt(fr, self.concat(fr))
        alts, fr.alts = fr.alts, []
        return _collapse(alts, ALT)

    # --- repetition -------------------------------------------------------

    def repeat(self, fr: _Frame, op: int, lo: int, hi: int, t: str, before: int, after: int, last_repeat: bool) -> int:
        greedy = not self.flags["U"]
        if after < len(t) and t[after] == "?":
            after += 1
            greedy = not greedy
        if last_repeat:
            raise ReError("invalid nested repetition operator", t[before:after])
        if not fr.items:
            raise ReError("missing argument to repetition operator", t[before:after])
        sub = fr.items[-1]
        r = Re(op, [sub], min=lo, max=hi, greedy=greedy)
        fr.items[-1] = r
        if op == REPEAT and (lo >= 2 or hi >= 2) and not _repeat_is_valid(r, 1000):
            raise ReError("invalid repeat count", t[before:after])
        return after

    # --- the main loop ----------------------------------------------------

    def parse(self) -> Re:
        t = self.whole
        stack = [_Frame(False, dict(self.flags))]
        i = 0
        last_repeat = False
        while i < len(t):
            fr = stack[-1]
            c = t[i]
            repeat = False
            if c == "(":
                if i + 1 < len(t) and t[i + 1] == "?":
                    i = self.perl_flags(t, i, stack)
                else:
                    stack.append(_Frame(True, dict(self.flags)))
                    i += 1
            elif c == "|":
                self.add_alt(fr, self.concat(fr))
                i += 1
            elif c == ")":
                if len(stack) < 2:
                    raise ReError("unexpected )", self.whole)
                self.close_group(stack)
                i += 1
            elif c in "^$":
                self.push(fr, Re(EMPTYW, runes=c + ("m" if self.flags["m"] else "")))
                i += 1
            elif c == ".":
                self.push(fr, Re(ANY, runes="s" if self.flags["s"] else "."))
                i += 1
            elif c == "[":
                node, i = self.klass(t, i)
                self.push(fr, node)
            elif c in "*+?":
                op = {"*": STAR, "+": PLUS, "?": QUEST}[c]
                i = self.repeat(fr, op, 0, 0, t, i, i + 1, last_repeat)
                repeat = True
            elif c == "{":
                parsed = _parse_repeat(t, i)
                if parsed is None:
                    self.literal(fr, "{")
                    i += 1
                else:
                    lo, hi, after = parsed
                    if lo < 0 or lo > 1000 or hi > 1000 or (hi >= 0 and lo > hi):
                        raise ReError("invalid repeat count", t[i:after])
                    i = self.repeat(fr, REPEAT, lo, hi, t, i, after, last_repeat)
                    repeat = True
            elif c == "\\":
                i = self.backslash(fr, t, i)
            else:
                self.literal(fr, c)
                i += 1
            last_repeat = repeat
        if len(stack) != 1:
            raise ReError("missing closing )", self.whole)
        return self.alternate(stack[0])

    def backslash(self, fr: _Frame, t: str, i: int) -> int:
        if i + 1 < len(t):
            c = t[i + 1]
            if c in "AbBz":
                self.push(fr, Re(EMPTYW, runes="\\" + c))
                return i + 2
            if c == "C":
                raise ReError("invalid escape sequence", t[i : i + 2])
            if c == "Q":
                end = t.find("\\E", i + 2)
                lit = t[i + 2 :] if end < 0 else t[i + 2 : end]
                for ch in lit:
                    self.literal(fr, ch)
                return len(t) if end < 0 else end + 2
        nxt = self.unicode_class(t, i)
        if nxt is None:
            nxt = self.perl_class(t, i)
        if nxt is not None:
            self.push(fr, Re(CLS, runes=t[i:nxt] + ("/i" if self.flags["i"] else "")))
            return nxt
        r, nxt = self.escape(t, i)
        self.literal(fr, chr(r) if r <= _MAX_RUNE and not 0xD800 <= r <= 0xDFFF else "\ufffd")
        return nxt


def _parse_int(t: str, i: int) -> Optional[tuple[int, int]]:
    if i >= len(t) or not ("0" <= t[i] <= "9"):
        return None
    if i + 1 < len(t) and t[i] == "0" and "0" <= t[i + 1] <= "9":
        return None
    j = i
    while j < len(t) and "0" <= t[j] <= "9":
        j += 1
    n = 0
    for ch in t[i:j]:
        if n >= 100_000_000:
            n = -1
            break
        n = n * 10 + int(ch)
    return n, j


def _parse_repeat(t: str, i: int) -> Optional[tuple[int, int, int]]:
    """Go's parseRepeat at t[i] == '{': (min, max, index after), or None when it is a literal {."""
    i += 1
    p = _parse_int(t, i)
    if p is None:
        return None
    lo, i = p
    if i >= len(t):
        return None
    if t[i] != ",":
        hi = lo
    else:
        i += 1
        if i >= len(t):
            return None
        if t[i] == "}":
            hi = -1
        else:
            q = _parse_int(t, i)
            if q is None:
                return None
            hi, i = q
            if hi < 0:
                lo = -1
    if i >= len(t) or t[i] != "}":
        return None
    return lo, hi, i + 1


def _repeat_is_valid(r: Re, n: int) -> bool:
    if r.op == REPEAT:
        m = r.max
        if m == 0:
            return True
        if m < 0:
            m = r.min
        if m > n:
            return False
        if m > 0:
            n //= m
    return all(_repeat_is_valid(s, n) for s in r.subs)


# --- parse-time factoring of alternations (Go's collapse and factor) --------


def _collapse(subs: list[Re], op: int) -> Re:
    if len(subs) == 1:
        return subs[0]
    flat: list[Re] = []
    for s in subs:
        if s.op == op:
            flat.extend(s.subs)
        else:
            flat.append(s)
    if op == ALT:
        flat = _factor(flat)
        if len(flat) == 1:
            return flat[0]
    return Re(op, flat)


def _leading_string(r: Re) -> tuple[str, bool]:
    if r.op == CONCAT and r.subs:
        r = r.subs[0]
    if r.op != LIT:
        return "", False
    return r.runes, r.fold


def _remove_leading_string(r: Re, n: int) -> Re:
    if r.op == CONCAT and r.subs:
        first = r.subs[0]
        if first.op == LIT:
            rest = first.runes[n:]
            subs = ([Re(LIT, runes=rest, fold=first.fold)] if rest else []) + r.subs[1:]
            if not subs:
                return Re(EMPTY)
            if len(subs) == 1:
                return subs[0]
            return Re(CONCAT, subs)
        return r
    if r.op == LIT:
        rest = r.runes[n:]
        return Re(LIT, runes=rest, fold=r.fold) if rest else Re(EMPTY)
    return r


def _leading_regexp(r: Re) -> Optional[Re]:
    if r.op == EMPTY:
        return None
    if r.op == CONCAT and r.subs:
        return None if r.subs[0].op == EMPTY else r.subs[0]
    return r


def _remove_leading_regexp(r: Re) -> Re:
    if r.op == CONCAT and r.subs:
        rest = r.subs[1:]
        if not rest:
            return Re(EMPTY)
        if len(rest) == 1:
            return rest[0]
        return Re(CONCAT, rest)
    return Re(EMPTY)


def _factor(sub: list[Re]) -> list[Re]:
    if len(sub) < 2:
        return sub
    # Round 1: common literal prefixes.
    out: list[Re] = []
    prefix, pfold, start = "", False, 0
    for i in range(len(sub) + 1):
        istr, ifold = "", False
        if i < len(sub):
            istr, ifold = _leading_string(sub[i])
            if ifold == pfold:
                same = 0
                while same < len(prefix) and same < len(istr) and prefix[same] == istr[same]:
                    same += 1
                if same > 0:
                    prefix = prefix[:same]
                    continue
        if i == start + 1:
            out.append(sub[start])
        elif i > start + 1:
            rest = [_remove_leading_string(s, len(prefix)) for s in sub[start:i]]
            out.append(Re(CONCAT, [Re(LIT, runes=prefix, fold=pfold), _collapse(rest, ALT)]))
        start, prefix, pfold = i, istr, ifold
    sub = out
    # Round 2: common leading char class (or fixed repeat of one).
    out = []
    first: Optional[Re] = None
    start = 0
    for i in range(len(sub) + 1):
        ifirst: Optional[Re] = None
        if i < len(sub):
            ifirst = _leading_regexp(sub[i])
            if (
                first is not None
                and first.equal(ifirst)
                and (_is_char_class(first) or (first.op == REPEAT and first.min == first.max and _is_char_class(first.subs[0])))
            ):
                continue
        if i == start + 1:
            out.append(sub[start])
        elif i > start + 1 and first is not None:
            rest = [_remove_leading_regexp(s) for s in sub[start:i]]
            out.append(Re(CONCAT, [first, _collapse(rest, ALT)]))
        start, first = i, ifirst
    sub = out
    # Round 3: runs of single characters and classes become one class.
    out = []
    start = 0
    for i in range(len(sub) + 1):
        if i < len(sub) and _is_char_class(sub[i]):
            continue
        if i == start + 1:
            out.append(sub[start])
        elif i > start + 1:
            out.append(Re(CLS, runes="|".join(s.runes for s in sub[start:i])))
        if i < len(sub):
            out.append(sub[i])
        start = i + 1
    sub = out
    # Round 4: runs of empty matches become one.
    out = []
    for i, s in enumerate(sub):
        if i + 1 < len(sub) and s.op == EMPTY and sub[i + 1].op == EMPTY:
            continue
        out.append(s)
    return out


# --- program size ------------------------------------------------------------


def _simplify1(op: int, greedy: bool, sub: Re) -> Re:
    if sub.op == EMPTY:
        return sub
    if op == sub.op and greedy == sub.greedy:
        return sub
    return Re(op, [sub], greedy=greedy)


def _simplify(r: Re) -> Re:
    """Go's Regexp.Simplify: repeats expanded into copies."""
    if r.op in (CAP, CONCAT, ALT):
        return Re(r.op, [_simplify(s) for s in r.subs])
    if r.op in (STAR, PLUS, QUEST):
        return _simplify1(r.op, r.greedy, _simplify(r.subs[0]))
    if r.op != REPEAT:
        return r
    sub = _simplify(r.subs[0])
    if r.min == 0 and r.max == 0:
        return Re(EMPTY)
    if r.max == -1:
        if r.min == 0:
            return _simplify1(STAR, r.greedy, sub)
        if r.min == 1:
            return _simplify1(PLUS, r.greedy, sub)
        return Re(CONCAT, [sub] * (r.min - 1) + [_simplify1(PLUS, r.greedy, sub)])
    if r.min == 1 and r.max == 1:
        return sub
    prefix: list[Re] = [sub] * r.min
    if r.max > r.min:
        suffix = _simplify1(QUEST, r.greedy, sub)
        for _ in range(r.min + 1, r.max):
            suffix = _simplify1(QUEST, r.greedy, Re(CONCAT, [sub, suffix]))
        if not prefix:
            return suffix
        prefix.append(suffix)
    if prefix:
        return Re(CONCAT, prefix)
    return Re(NOMATCH)


def _insts(root: Re) -> int:
    """Instructions Go's compiler emits for root (iterative: x{2,1000} nests 998 deep)."""
    memo: dict[int, tuple[int, bool]] = {}
    stack: list[tuple[Re, bool]] = [(root, False)]
    while stack:
        r, ready = stack.pop()
        if id(r) in memo:
            continue
        if not ready and r.subs:
            stack.append((r, True))
            stack.extend((sub, False) for sub in r.subs if id(sub) not in memo)
            continue
        parts = [memo[id(sub)] for sub in r.subs]
        op = r.op
        if op == LIT:
            out = (max(len(r.runes), 1), len(r.runes) == 0)
        elif op in (CLS, ANY, NOMATCH):
            out = (1, False)
        elif op in (EMPTY, EMPTYW):
            out = (1, True)
        elif op == CAP:
            out = (parts[0][0] + 2, parts[0][1])
        elif op == STAR:
            out = (parts[0][0] + (2 if parts[0][1] else 1), True)
        elif op == PLUS:
            out = (parts[0][0] + 1, parts[0][1])
        elif op == QUEST:
            out = (parts[0][0] + 1, True)
        elif op == CONCAT:
            out = (sum(p[0] for p in parts), all(p[1] for p in parts)) if parts else (1, True)
        elif op == ALT:
            out = (sum(p[0] for p in parts) + len(parts) - 1, any(p[1] for p in parts))
        else:  # pragma: no cover - REPEAT never survives _simplify
            raise AssertionError(op)
        memo[id(r)] = out
    return memo[id(root)][0]


def program_size(r: Re) -> int:
    """The instructions of syntax.Compile(r.Simplify()): a fail, the body, a match."""
    return 2 + _insts(_simplify(r))


_MOST = (1 << 63) // 4


def estimate(r: Re) -> int:
    """Go's estimateInsts: an upper bound, saturating, without building the program."""
    total = 0
    for s in r.subs:
        total = min(total + estimate(s), _MOST)
    if r.op == LIT:
        return len(r.runes) + 1
    if r.op == REPEAT:
        n = max(r.max, r.min)
        return min(_MOST, total * (n + 1) + n + 1)
    if r.op in (CONCAT, ALT):
        return min(_MOST, total + len(r.subs) + 1)
    return min(_MOST, total + 2)


def parse(expr: str) -> Re:
    """Parses expr as Go's syntax.Parse(expr, syntax.Perl); raises ReError."""
    return _Parser(expr).parse()


def target_regex_problem(expr: str, limits: Limits) -> Optional[str]:
    """Says why a target_regex is refused, or None (Go's compileTargetRegexWithin)."""
    if limits.max_pattern_bytes > 0 and blen(expr) > limits.max_pattern_bytes:
        return f"is {blen(expr)} bytes; at most {limits.max_pattern_bytes} ([limits] max_regex_bytes)"
    if expr == "":
        return None
    try:
        re = parse(expr)
    except ReError as e:
        return f"does not compile (Go RE2 syntax): {e}"
    if limits.max_regex_insts > 0:
        est = estimate(re) + 2
        if est > limits.max_regex_insts * 4:
            return (
                f"is too complex: about {est} program instructions; at most {limits.max_regex_insts} "
                "([limits] max_regex_insts)"
            )
        n = program_size(re)
        if n > limits.max_regex_insts:
            return f"is too complex: {n} program instructions; at most {limits.max_regex_insts} ([limits] max_regex_insts)"
    try:
        parse("^(?:" + expr + ")$")
    except ReError as e:
        return f"does not compile (Go RE2 syntax): {e}"
    return None
