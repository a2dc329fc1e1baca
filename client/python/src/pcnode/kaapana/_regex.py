"""target_regex checked as pcnode's daemon reads it: the syntax of Go's RE2
(regexp/syntax with Perl flags), the byte cap of daemon/spec/limits.go, and
the match of the whole path (the daemon compiles ``^(?:EXPR)$``).

Python's ``re`` accepts what RE2 refuses (look-around, back-references,
possessive repeats) and refuses what RE2 accepts (``\\pL``, ``[[:alpha:]]``,
``\\z``, ``(?U)``), so it cannot be asked. This module is a small checker
written from the documented grammar (the RE2 syntax reference and the
package doc of Go's regexp/syntax): alternation of concatenations of atoms,
each atom optionally repeated once; groups with flags and names; classes
with ranges, Perl, POSIX and Unicode classes; the escapes. It reads the
expression once, left to right, keeping a stack of the open groups (no
recursion: the nesting depth is the input's to choose), builds no tree and
no program, and says whether Go accepts the expression and, if not, why,
with Go's error code and the part at fault, as Go's message gives them.

**Program size is not checked here.** The daemon also refuses an expression
whose compiled program has more than ``[limits] max_regex_insts``
instructions. That cap is a node limit, and counting it exactly would mean
reimplementing Go's compiler; so Python checks syntax and the byte cap, and
the instruction cap is left to the node, which reports it at submit and at
ResolveTask on the same field (``...scale_rule.target_regex``).

Neither does it check Go's nesting-depth limit (a parse tree 1000 levels
high) nor its "expression too large" limit: neither can be reached within the
default 1024-byte cap (``[limits] max_regex_bytes``); a node configured with a
larger cap reports them on the same field.
"""

from __future__ import annotations

from pcnode.kaapana._spec import Limits, blen, clip, go_quote

# Go's error codes (regexp/syntax ErrorCode), the text Go's messages carry.
MISSING_PAREN = "missing closing )"
UNEXPECTED_PAREN = "unexpected )"
MISSING_BRACKET = "missing closing ]"
MISSING_REPEAT_ARGUMENT = "missing argument to repetition operator"
INVALID_REPEAT_OP = "invalid nested repetition operator"
INVALID_REPEAT_SIZE = "invalid repeat count"
INVALID_ESCAPE = "invalid escape sequence"
TRAILING_BACKSLASH = "trailing backslash at end of expression"
INVALID_CHAR_RANGE = "invalid character class range"
INVALID_PERL_OP = "invalid or unsupported Perl syntax"
INVALID_NAMED_CAPTURE = "invalid named capture"

MAX_REPEAT = 1000  # the most a counted repetition, or nested ones multiplied, may count

_POSIX = frozenset(
    {
        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
        "lower", "print", "punct", "space", "upper", "word", "xdigit",
    }
)  # fmt: skip

# The names \p{...} accepts, as Go 1.26 looks them up: case-insensitively,
# ignoring spaces, underscores and hyphens, among unicode.Categories,
# unicode.CategoryAliases, unicode.Scripts and Any, ASCII, Assigned, Cn, LC.
# A script whose name is not spelled as Go canonicalizes (Old_Italic,
# SignWriting) is not found that way by Go 1.26, so it is not here either.
# Made by a program that printed those tables' keys; tests/kaapana/test_regex.py
# checks every one against Go.
_UNICODE_NAMES = """
    adlam ahom any arabic armenian ascii assigned avestan balinese bamum batak bengali bhaiksuki
    bopomofo brahmi braille buginese buhid c carian casedletter cc cf chakma cham cherokee
    chorasmian closepunctuation cn cntrl co combiningmark common connectorpunctuation control coptic
    cs cuneiform currencysymbol cypriot cyrillic dashpunctuation decimalnumber deseret devanagari
    digit dogra duployan elbasan elymaic enclosingmark ethiopic finalpunctuation format georgian
    glagolitic gothic grantha greek gujarati gurmukhi han hangul hanunoo hatran hebrew hiragana
    inherited initialpunctuation javanese kaithi kannada katakana kawi kharoshthi khmer khojki
    khudawadi l lao latin lc lepcha letter letternumber limbu lineseparator lisu ll lm lo
    lowercaseletter lt lu lycian lydian m mahajani makasar malayalam mandaic manichaean marchen mark
    mathsymbol mc me medefaidrin miao mn modi modifierletter modifiersymbol mongolian mro multani
    myanmar n nabataean nandinagari nd newa nko nl no nonspacingmark number nushu ogham
    openpunctuation oriya osage osmanya other otherletter othernumber otherpunctuation othersymbol p
    palmyrene paragraphseparator pc pd pe pf phoenician pi po privateuse ps punct punctuation rejang
    runic s samaritan saurashtra sc separator sharada shavian siddham sinhala sk sm so
    sogdian soyombo spaceseparator spacingmark sundanese surrogate symbol syriac tagalog tagbanwa
    takri tamil tangsa tangut telugu thaana thai tibetan tifinagh tirhuta titlecaseletter toto
    ugaritic unassigned uppercaseletter vai vithkuqi wancho yezidi yi z zl zp zs
"""
_UNICODE = frozenset(_UNICODE_NAMES.split())

_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")
_DIGITS = frozenset("0123456789")


class RegexError(Exception):
    """Go refuses the expression: ``code`` is Go's error code, ``expr`` the part at fault."""

    def __init__(self, code: str, expr: str) -> None:
        super().__init__(f"{code}: {go_quote(clip(expr))}")
        self.code = code
        self.expr = expr


def _unicode_name_ok(name: str) -> bool:
    key = name.replace(" ", "").replace("_", "").replace("-", "").lower()
    return key in _UNICODE


def _count(t: str, i: int) -> tuple[int, int] | None:
    """A repetition count at t[i:]: (value, end), or None when there is none.

    A count is decimal digits without a leading zero (``{01}`` is no count, so
    the brace is a literal); any value over MAX_REPEAT is refused alike, so a
    long one is not converted (Python refuses ints of over 4300 digits).
    """
    j = i
    while j < len(t) and t[j] in _DIGITS:
        j += 1
    if j == i or (j - i >= 2 and t[i] == "0"):
        return None
    return (int(t[i:j]) if j - i <= 8 else MAX_REPEAT + 1), j


def _braces(t: str, i: int) -> tuple[int, int, int] | None:
    """``{n}``, ``{n,}`` or ``{n,m}`` at t[i] == "{": (min, max or -1, end), or None (a literal brace)."""
    lo = _count(t, i + 1)
    if lo is None:
        return None
    n, j = lo
    if j < len(t) and t[j] == "}":
        return n, n, j + 1
    if j >= len(t) or t[j] != ",":
        return None
    j += 1
    if j < len(t) and t[j] == "}":
        return n, -1, j + 1
    hi = _count(t, j)
    if hi is None:
        return None
    m, j = hi
    if j < len(t) and t[j] == "}":
        return n, m, j + 1
    return None


class _Level:
    """The whole expression or one open group: what has been read of it so far.

    Weights: the largest product of counted repetitions nested in an operand
    (``a`` weighs 1, ``(a{10}){20}`` 200), which Go caps at 1000 like a
    single count.
    """

    def __init__(self) -> None:
        self.most = 1  # the heaviest operand done with; even an empty group weighs 1: (){1000} repeats it
        self.operand: int | None = None  # the weight of what a repetition would apply to
        self.after_repeat = ""  # the repetition just read, when the last thing read was one

    def push(self, weight: int) -> None:
        if self.operand is not None:
            self.most = max(self.most, self.operand)  # the previous operand can be repeated no more
        self.operand = weight
        self.after_repeat = ""

    def weight(self) -> int:
        return self.most if self.operand is None else max(self.most, self.operand)


class _Checker:
    """Walks one expression, without recursion (depth is the input's to choose);
    raises RegexError at the first thing Go refuses."""

    def __init__(self, t: str) -> None:
        self.t = t
        self.i = 0

    def run(self) -> None:
        t = self.t
        levels = [_Level()]
        while self.i < len(t):
            lv = levels[-1]
            start = self.i
            c = t[start]
            if c == "|":
                self.i += 1
                lv.most, lv.operand, lv.after_repeat = lv.weight(), None, ""
            elif c == ")":
                if len(levels) == 1:
                    raise RegexError(UNEXPECTED_PAREN, t)
                self.i += 1
                levels.pop()
                levels[-1].push(lv.weight())
            elif (rep := self._repetition()) is not None:
                self._repeat(lv, start, *rep)
            else:
                lv.after_repeat = ""
                if c == "(":
                    if self._group():
                        levels.append(_Level())
                elif (got := self._atom()) is not None:
                    lv.push(got)
        if len(levels) > 1:
            raise RegexError(MISSING_PAREN, t)

    def _peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.t[j] if j < len(self.t) else ""

    def _repetition(self) -> tuple[int, int] | None:
        """Reads ``*``, ``+``, ``?`` or a counted repetition: (min, max or -1); None when there is none."""
        t = self.t
        c = t[self.i]
        if c in "*+?":
            self.i += 1
            return (0, -1) if c == "*" else (1, -1) if c == "+" else (0, 1)
        if c == "{" and (b := _braces(t, self.i)) is not None:
            start = self.i
            lo, hi, self.i = b
            if lo > MAX_REPEAT or hi > MAX_REPEAT or (hi >= 0 and lo > hi):
                raise RegexError(INVALID_REPEAT_SIZE, t[start : self.i])
            return lo, hi
        return None  # a "{" that starts no count is a literal

    def _repeat(self, lv: _Level, start: int, lo: int, hi: int) -> None:
        t = self.t
        if self._peek() == "?":
            self.i += 1  # non-greedy
        if lv.after_repeat:
            raise RegexError(INVALID_REPEAT_OP, lv.after_repeat + t[start : self.i])
        if lv.operand is None:
            raise RegexError(MISSING_REPEAT_ARGUMENT, t[start : self.i])
        # x{0} is not looked into (it weighs as one character); x{n,} counts n, x{0,} nothing.
        n = hi if hi >= 0 else lo
        if hi == 0:
            lv.operand = 1
        elif n > 0:
            lv.operand *= n
        if (lo >= 2 or hi >= 2) and lv.operand > MAX_REPEAT:
            raise RegexError(INVALID_REPEAT_SIZE, t[start : self.i])
        lv.after_repeat = t[start : self.i]

    def _atom(self) -> int | None:
        """Reads one atom; its weight, or None when it leaves nothing to repeat (an empty \\Q\\E)."""
        t = self.t
        c = t[self.i]
        if c == "[":
            self._class()
            return 1
        if c != "\\":
            self.i += 1
            return 1
        nxt = self._peek(1)
        if nxt in ("A", "b", "B", "z"):
            self.i += 2
        elif nxt == "Q":
            end = t.find("\\E", self.i + 2)
            lit = t[self.i + 2 :] if end < 0 else t[self.i + 2 : end]
            self.i = len(t) if end < 0 else end + 2
            return 1 if lit else None
        elif nxt in ("p", "P"):
            self.i = self._unicode_class(self.i)
        elif nxt and nxt in "dDsSwW":
            self.i += 2
        else:
            self.i = self._escape(self.i)
        return 1

    def _group(self) -> bool:
        """Reads the opening of a group at "(": True when one opens, False for (?flags) alone."""
        t = self.t
        start = self.i
        if self._peek(1) != "?":
            self.i += 1
            return True
        rest = t[start:]
        # A name needs something after "<": a bare "(?<" at the end is read as flags.
        if (rest.startswith("(?P<") and len(rest) > 4) or (rest.startswith("(?<") and len(rest) > 3):
            begin = start + (4 if rest.startswith("(?P<") else 3)
            end = t.find(">", begin)
            if end < 0:
                raise RegexError(INVALID_NAMED_CAPTURE, rest)
            name = t[begin:end]
            if name == "" or any(ch != "_" and ch not in _ALNUM for ch in name):
                raise RegexError(INVALID_NAMED_CAPTURE, t[start : end + 1])
            # Go 1.26 accepts a name used twice ((?P<x>a)|(?P<x>b)): so does this.
            self.i = end + 1
            return True
        # Flags: (?flags) or (?flags:re), flags being xyz, -xyz or xy-z of i, m, s, U.
        j = start + 2
        negated = False
        seen = False
        while j < len(t):
            ch = t[j]
            j += 1
            if ch in "imsU":
                seen = True
            elif ch == "-" and not negated:
                negated = True
                seen = False
            elif ch in ":)" and (seen or not negated):
                self.i = j
                return ch == ":"
            else:
                break
        raise RegexError(INVALID_PERL_OP, t[start:j])

    def _class(self) -> None:
        """A bracketed class at self.i; leaves self.i after its "]"."""
        t = self.t
        start = self.i
        j = start + 1
        if j < len(t) and t[j] == "^":
            j += 1
        first = True
        while first or j >= len(t) or t[j] != "]":
            first = False
            if t.startswith("[:", j):
                end = t.find(":]", j + 2)
                if end >= 0:
                    name = t[j + 2 : end]
                    if name.removeprefix("^") not in _POSIX:
                        raise RegexError(INVALID_CHAR_RANGE, t[j : end + 2])
                    j = end + 2
                    continue
            if t.startswith("\\p", j) or t.startswith("\\P", j):
                j = self._unicode_class(j)
                continue
            if j + 1 < len(t) and t[j] == "\\" and t[j + 1] in "dDsSwW":
                j += 2
                continue
            lo_at = j
            lo, j = self._class_char(j, start)
            if j + 1 < len(t) and t[j] == "-" and t[j + 1] != "]":
                hi, j = self._class_char(j + 1, start)
                if hi < lo:
                    raise RegexError(INVALID_CHAR_RANGE, t[lo_at:j])
        self.i = j + 1

    def _class_char(self, j: int, class_start: int) -> tuple[int, int]:
        """One character of a class at t[j]: (code point, end)."""
        t = self.t
        if j >= len(t):
            raise RegexError(MISSING_BRACKET, t[class_start:])
        if t[j] == "\\":
            end = self._escape(j)
            return _escaped_value(t[j:end]), end
        return ord(t[j]), j + 1

    def _unicode_class(self, j: int) -> int:
        r"""``\pN``, ``\p{Name}``, ``\p{^Name}`` (and \P) at t[j]; returns its end."""
        t = self.t
        if j + 2 < len(t) and t[j + 2] == "{":
            close = t.find("}", j)
            if close < 0:
                raise RegexError(INVALID_CHAR_RANGE, t[j:])
            name, end = t[j + 3 : close], close + 1
        else:
            name, end = t[j + 2 : j + 3], min(j + 3, len(t))
        if not _unicode_name_ok(name.removeprefix("^")):
            raise RegexError(INVALID_CHAR_RANGE, t[j:end])
        return end

    def _escape(self, j: int) -> int:
        """A single-character escape at t[j] == "\\"; returns its end."""
        t = self.t
        if j + 1 >= len(t):
            raise RegexError(TRAILING_BACKSLASH, "")
        c = t[j + 1]
        k = j + 2
        if c in "1234567" and not (k < len(t) and t[k] in _OCTAL):
            raise RegexError(INVALID_ESCAPE, t[j:k])  # \1 is a back-reference, which RE2 lacks
        if c in _OCTAL:
            while k < len(t) and k < j + 4 and t[k] in _OCTAL:
                k += 1
            return k
        if c == "x":
            if k < len(t) and t[k] == "{":
                close = k + 1
                value = 0
                while close < len(t) and t[close] in _HEX:
                    value = value * 16 + int(t[close], 16)
                    if value > 0x10FFFF:
                        raise RegexError(INVALID_ESCAPE, t[j : close + 1])  # up to the digit too many
                    close += 1
                digits = t[k + 1 : close]
                if close < len(t) and t[close] == "}" and digits:
                    return close + 1
                raise RegexError(INVALID_ESCAPE, t[j : min(close + 1, len(t))])
            if k + 1 < len(t) and t[k] in _HEX and t[k + 1] in _HEX:
                return k + 2
            raise RegexError(INVALID_ESCAPE, t[j : min(k + 2, len(t))])
        if c in "afnrtv" or (c.isascii() and c not in _ALNUM):
            return k
        raise RegexError(INVALID_ESCAPE, t[j:k])


def _escaped_value(esc: str) -> int:
    """The code point a valid single-character escape stands for."""
    c = esc[1]
    if c in _OCTAL:
        return int(esc[1:], 8)
    if c == "x":
        return int(esc[2:].strip("{}"), 16)
    return {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}.get(c, ord(c))


def check_syntax(expr: str) -> None:
    """Raises RegexError unless Go's syntax.Parse(expr, syntax.Perl) accepts expr."""
    _Checker(expr).run()


def target_regex_problem(expr: str, limits: Limits) -> str | None:
    """Says why the daemon refuses a target_regex, or None; the instruction cap is the node's to check."""
    if limits.max_pattern_bytes > 0 and blen(expr) > limits.max_pattern_bytes:
        return f"is {blen(expr)} bytes; at most {limits.max_pattern_bytes} ([limits] max_regex_bytes)"
    if expr == "":
        return None
    try:
        check_syntax(expr)
    except RegexError as e:
        return f"does not compile (Go RE2 syntax): {e}"
    # The daemon matches the whole path: ^(?:EXPR)$ must parse too (an
    # unterminated \Q swallows the closing parenthesis).
    wrapped = "^(?:" + expr + ")$"
    try:
        check_syntax(wrapped)
    except RegexError as e:
        return f"does not compile (Go RE2 syntax): error parsing regexp: {e.code}: `{e.expr}`"
    return None
