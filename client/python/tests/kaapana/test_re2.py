"""target_regex: Go's RE2 syntax and program size, in Python.

Each row is an expression and what Go 1.26 says of it, recorded from the Go side:
the instructions of syntax.Compile(syntax.Parse(expr, Perl).Simplify()) (None:
Parse refuses it), and whether ^(?:expr)$ is refused (a \\Q that eats the
closing parenthesis).
"""

from __future__ import annotations

import pytest

from pcnode.kaapana import _re2
from pcnode.kaapana._spec import Limits

GO = [
    ("a", 3, False),
    ("abc", 5, False),
    ("a|b", 3, False),
    ("a|b|c", 3, False),
    ("ab|ac", 4, False),
    ("abc|abd|x", 7, False),
    ("(a|b|c){600}", 1802, False),
    ("(abc){700}", 3502, False),
    ("(abc){600}", 3002, False),
    ("a{1000}", 1002, False),
    ("a{1001}", None, False),
    ("a{2}{3}", None, False),
    ("(?:a{2}){3}", 8, False),
    ("a**", None, False),
    ("a*?", 4, False),
    ("a*??", None, False),
    ("a+?b", 5, False),
    ("(?i)abc", 5, False),
    ("(?i)a|A", 3, False),
    ("[a-z]+", 4, False),
    ("[z-a]", None, False),
    ("[]a]", 3, False),
    ("[^]a]", 3, False),
    ("[a", None, False),
    ("a]", 4, False),
    ("\\pL", 3, False),
    ("\\p{Greek}", 3, False),
    ("\\p{greek}", 3, False),
    ("\\p{Old_Italic}", None, False),
    ("\\p{^Greek}", 3, False),
    ("\\PL", 3, False),
    ("\\p{Letter}", 3, False),
    ("\\pX", None, False),
    ("[[:alpha:]]", 3, False),
    ("[[:foo:]]", None, False),
    ("[[:alpha:]", None, False),
    ("[\\d\\s]", 3, False),
    ("\\d+\\.\\w*", 7, False),
    ("\\z", 3, False),
    ("\\Z", None, False),
    ("\\A", 3, False),
    ("\\b", 3, False),
    ("\\C", None, False),
    ("\\Qa.b\\E+", 6, False),
    ("\\Qabc", 5, True),
    ("\\1", None, False),
    ("\\12", 3, False),
    ("\\8", None, False),
    ("\\0", 3, False),
    ("\\x41", 3, False),
    ("\\x{41}", 3, False),
    ("\\x{110000}", None, False),
    ("\\x4", None, False),
    ("\\xZZ", None, False),
    ("(?P<name>a)", 5, False),
    ("(?<name>a)", 5, False),
    ("(?P=name)", None, False),
    ("(?=a)", None, False),
    ("(?!a)", None, False),
    ("(?<=a)", None, False),
    ("(?<!a)", None, False),
    ("(?>a)", None, False),
    ("(?#comment)", None, False),
    ("(?i-s:a)", 3, False),
    ("(?i-)", None, False),
    ("(?-)", None, False),
    ("(?)", 3, False),
    ("(?U)a*", 4, False),
    ("(?m)^a$", 5, False),
    ("a(?i)*", 4, False),
    ("*a", None, False),
    ("|*", None, False),
    ("(*)", None, False),
    ("a|*", None, False),
    ("^*", 5, False),
    ("$+", 4, False),
    ("\\b*", 5, False),
    ("()", 5, False),
    ("(|)", 5, False),
    ("a||b", 7, False),
    ("(a)(b)(c)", 11, False),
    ("((a))", 7, False),
    (")", None, False),
    ("(", None, False),
    ("a{,3}", 7, False),
    ("a{01}", 7, False),
    ("a{1,2}", 5, False),
    ("a{2,1}", None, False),
    ("a{3,}", 6, False),
    ("a{0}", 3, False),
    ("a{0,}", 4, False),
    ("a{1,}", 4, False),
    ("x{1000}y", 1003, False),
    ("[a-c]{1000}", 1002, False),
    ("(?:[ab]x|[ab]y){500}", 1002, False),
    ("(?:ax|ay){500}", 1002, False),
    ("(?:a|ab|b){300}", 1802, False),
    (".*\\.dcm", 8, False),
    ("[^/]+\\.nii(\\.gz)?", 14, False),
    ("(?:a*)*", 4, False),
    ("(?:a+)*", 5, False),
    ("(?:a?)*", 6, False),
    ("(a*)*", 8, False),
    ("(a|)*", 9, False),
    ("(?:)*", 3, False),
    ("x{2,1000}", 2000, False),
    ("(?:x{2,5}){200}", 1602, False),
    ("(?:ab|cd|ef){400}", 3202, False),
    ("(?:abc|abd|abe){500}", 1502, False),
    ("\\x{10FFFF}", 3, False),
    ("\\pN{500}", 502, False),
    ("é", 3, False),
    ("\\é", None, False),
    ("[\\-a]", 3, False),
    ("[a-\\d]", None, False),
    ("[\\d-z]", 3, False),
    ("a{1000,}", 1003, False),
    ("a{1000}{1}", None, False),
    ("a{100}b{100}c{100}", 302, False),
    ("\\_", 3, False),
    ("\\ ", 3, False),
    ("(?:ab){999}", 2000, False),
    ("(?:a|b|c|d){666}", 668, False),
    ("[0-9]{1000}[a-z]{998}", 2000, False),
    ("(x{10}){99}", 1190, False),
    ("((x{10}){10}){19}", None, False),
]


@pytest.mark.parametrize(("expr", "insts", "wrapped_refused"), GO)
def test_as_go(expr: str, insts: int | None, wrapped_refused: bool) -> None:
    if insts is None:
        with pytest.raises(_re2.ReError):
            _re2.parse(expr)
        assert _re2.target_regex_problem(expr, Limits()) is not None
        return
    assert _re2.program_size(_re2.parse(expr)) == insts
    if wrapped_refused:
        with pytest.raises(_re2.ReError):
            _re2.parse("^(?:" + expr + ")$")
    problem = _re2.target_regex_problem(expr, Limits())
    if insts <= 2000 and not wrapped_refused and _re2.estimate(_re2.parse(expr)) + 2 <= 8000:
        assert problem is None
    else:
        assert problem is not None


def test_long_literals_at_the_limit() -> None:
    wide = Limits(max_pattern_bytes=4000)
    assert _re2.target_regex_problem("a" * 1998, wide) is None  # 2000 instructions
    assert "2001 program instructions" in (_re2.target_regex_problem("a" * 1999, wide) or "")


def test_length_cap_first() -> None:
    assert "1025 bytes" in (_re2.target_regex_problem("(" * 1025, Limits()) or "")


@pytest.mark.parametrize("expr", ["(?=a)", "(?<=a)b", r"(a)\1", "a++", "(?>a)", r"\Z"])
def test_python_only_syntax_refused(expr: str) -> None:
    assert _re2.target_regex_problem(expr, Limits()) is not None


@pytest.mark.parametrize("expr", [r"\pL+", "[[:alpha:]]", r"a\z", "(?U)a*", r"\Qa.b\E", r"\p{Greek}", "(?P<n>x)"])
def test_re2_only_syntax_accepted(expr: str) -> None:
    assert _re2.target_regex_problem(expr, Limits()) is None
