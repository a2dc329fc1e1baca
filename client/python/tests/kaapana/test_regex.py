"""target_regex syntax (pcnode.kaapana._regex) against Go's, in the same run.

TABLE holds expressions with the verdict Go gives them: "ok", "wrap" (the
expression parses, but ``^(?:EXPR)$``, which the daemon compiles to match a
whole path, does not) or Go's regexp/syntax error code. Python must give the
table's verdict, and so must the real Go side: every expression goes into one
processing-container.json (inputs spread over templates to respect the
channel cap) that ``pcnode-cli validate`` checks, so the table cannot drift
from Go. The problem texts are compared too. So are seeded random expressions
made of whole and broken constructs, and every \\p{...} name Python keeps.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pcnode.kaapana import _regex
from pcnode.kaapana._regex import target_regex_problem
from pcnode.kaapana._spec import Limits

OK = "ok"
WRAP = "wrap"
MP = _regex.MISSING_PAREN
UP = _regex.UNEXPECTED_PAREN
MB = _regex.MISSING_BRACKET
MRA = _regex.MISSING_REPEAT_ARGUMENT
NEST = _regex.INVALID_REPEAT_OP
SIZE = _regex.INVALID_REPEAT_SIZE
ESC = _regex.INVALID_ESCAPE
TB = _regex.TRAILING_BACKSLASH
RANGE = _regex.INVALID_CHAR_RANGE
PERL = _regex.INVALID_PERL_OP
NAMED = _regex.INVALID_NAMED_CAPTURE

TABLE: list[tuple[str, str]] = [
    # literals, dot, anchors, empty-width
    ("a", OK), ("abc", OK), (".", OK), (".*", OK), ("^$", OK), (r"\A\z", OK), (r"\b\B", OK),
    ("é+", OK), ("]", OK), ("}", OK), ("a{", OK), ("a{1", OK), ("a{1,", OK), ("a{1,2", OK),
    ("a{,3}", OK), ("a{x}", OK), ("{", OK), ("a{01}", OK), ("a{1,02}", OK), ("a{00}", OK),
    # alternation and groups
    ("a|b", OK), ("a|", OK), ("|", OK), ("a||b", OK), ("()", OK), ("(|)", OK), ("(a)(b)", OK),
    ("((a))", OK), ("(?:a)", OK), ("(?:)", OK), ("(a", MP), ("((a)", MP), ("(", MP), ("(?:a", MP),
    (")", UP), ("a)", UP), ("(a))", UP), ("a)(b", UP), ("a|b)", UP),
    # repetition
    ("a*", OK), ("a+", OK), ("a?", OK), ("a*?", OK), ("a+?", OK), ("a??", OK), ("a{2}", OK),
    ("a{2,}", OK), ("a{2,5}", OK), ("a{2}?", OK), ("a{2,5}?", OK), ("a{0}", OK), ("a{0,0}", OK),
    ("a{1000}", OK), ("a{0,1000}", OK), ("a{1000,}", OK), ("(a*)*", OK), ("(a+)+", OK),
    ("(?:a*)*", OK), ("^*", OK), ("$*", OK), (r"\b*", OK), (r"\A+", OK),
    ("*", MRA), ("+a", MRA), ("?", MRA), ("a|*", MRA), ("(*)", MRA), ("(?:+)", MRA), ("{2}", MRA),
    ("a(?i)*", OK), ("(?i)*", MRA), ("(?i)(?i)*", MRA), (r"\Q\E*", MRA), (r"a\Q\E*", OK),
    (r"a*\Q\E*", OK), ("a*(?i)*", OK),
    ("a**", NEST), ("a*+", NEST), ("a++", NEST), ("a?+", NEST), ("a*??", NEST), ("a{2}{3}", NEST),
    ("a{2}*", NEST), ("a*{2}", NEST), ("a{2}?+", NEST), ("a+*", NEST), ("a??*", NEST),
    ("a{1001}", SIZE), ("a{0,1001}", SIZE), ("a{1001,}", SIZE), ("a{5,2}", SIZE),
    ("a{99999999999}", SIZE), ("a{2,99999999999}", SIZE), ("{1001}", SIZE),
    ("(a{500}){2}", OK), ("(a{500}){3}", SIZE), ("((a{10}){10}){10}", OK), ("((a{10}){10}){11}", SIZE),
    ("(a{2,}){500}", OK), ("(a{2,}){501}", SIZE), ("(a{0,1000}){2}", SIZE), ("(a{1000}){0}", OK),
    ("((a{500}){0}){3}", OK), ("(a{1000}){1}", OK), ("(a{1000})*", OK), ("(a{1000}){0,1}", OK),
    ("(a{1000}b){2}", SIZE), ("(a{1000}|b){2}", SIZE), ("(a{500}|b{2}){2}", OK), ("(a{3}){333}", OK),
    ("(a{3}){334}", SIZE), ("(a{1000}){1,}", OK),
    # flags
    ("(?i)a", OK), ("(?i:a)", OK), ("(?ims)a", OK), ("(?U)a*", OK), ("(?i-s:a)", OK), ("(?-i)a", OK),
    ("(?)", OK), ("(?i)", OK), ("(?s).", OK), ("(?m)^a$", OK), ("(?i-U)a", OK),
    ("(?x)a", PERL), ("(?i-)a", PERL), ("(?-)", PERL), ("(?--i)", PERL), ("(?i-m-s)", PERL), ("(?i", PERL),
    ("(?", PERL), ("(?#c)", PERL), ("(?=a)", PERL), ("(?!a)", PERL), ("(?>a)", PERL), ("(?|a)", PERL),
    ("(?P=n)", PERL), ("(?P>n)", PERL), ("(?I)a", PERL), ("(?i:a", MP),
    # named groups
    ("(?P<n>a)", OK), ("(?<n>a)", OK), ("(?P<n_1>a)", OK), ("(?P<1>a)", OK), ("(?P<_>a)", OK),
    ("(?P<x>a)|(?P<x>b)", OK), ("(?P<x>a)(?P<x>b)", OK),
    ("(?P<>a)", NAMED), ("(?<>a)", NAMED), ("(?P<a-b>a)", NAMED), ("(?P<é>a)", NAMED), ("(?P<n", NAMED),
    ("(?<", PERL), ("(?P<", PERL), ("(?P", PERL), ("a(?<", PERL), ("(?<n", NAMED), ("(?<=a)", NAMED),
    ("(?<!a)", NAMED), ("(?P<a b>x)", NAMED), ("(?P<n>", MP),
    ("(?P<n>a", MP),
    # escapes
    (r"\a\f\t\n\r\v", OK), (r"\*\+\?\(\)\[\]\{\}\|\^\$\.\\", OK), (r"\ ", OK), (r"\_", OK), (r"\-", OK),
    (r"\<\>", OK), (r"\0", OK), (r"\08", OK), (r"\012", OK), (r"\12", OK), (r"\400", OK), (r"\x41", OK),
    (r"\x{41}", OK), (r"\x{10FFFF}", OK), (r"\x{0000000041}", OK), (r"\d\D\s\S\w\W", OK),
    (r"\1", ESC), (r"(a)\1", ESC), (r"\8", ESC), (r"\9", ESC), (r"\18", ESC), (r"\x{110000}", ESC),
    (r"\x{}", ESC), (r"\x{zz}", ESC), (r"\x{41", ESC), (r"\xg0", ESC), (r"\x4", ESC), (r"\x", ESC),
    (r"\C", ESC), (r"\Z", ESC), (r"\E", ESC), (r"\G", ESC), (r"\k<n>", ESC), (r"\g1", ESC), (r"\é", ESC),
    (r"\X", ESC), (r"\R", ESC), (r"\h", ESC), (r"\e", ESC), (r"\cA", ESC), (r"\N{DIGIT ONE}", ESC),
    ("\\", TB), ("a\\", TB), ("(a\\", TB),
    # \Q...\E
    (r"\Qa*\E", OK), (r"\Q\E", OK), (r"\Qa\Eb*", OK), (r"(?i)\Q\E", OK), (r"\Q(\E", OK), (r"\Q[\E]", OK),
    (r"\Qabc", WRAP), (r"\Qa\\", WRAP), (r"\Q)", WRAP), (r"a\Q", WRAP), (r"\Q\\E\E", ESC),
    # classes
    ("[a]", OK), ("[abc]", OK), ("[a-z]", OK), ("[^a-z]", OK), ("[]a]", OK), ("[^]a]", OK), ("[a-]", OK),
    ("[-a]", OK), ("[a-b-c]", OK), ("[--a]", OK), (r"[\-]", OK), (r"[\]]", OK), ("[[]", OK), ("[a[]", OK),
    (r"[\d-z]", OK), (r"[\x00-\x{10FFFF}]", OK), (r"[^\x00-\x{10FFFF}]", OK), ("[a-a]", OK),
    (r"[\n-\r]", OK), (r"[\041-\176]", OK), ("[.]", OK), ("[*+?{}()|^$]", OK), ("[é-ü]", OK),
    ("[z-a]", RANGE), (r"[\x{10FFFF}-\x00]", RANGE), ("[b-a]", RANGE), ("[ü-é]", RANGE),
    ("[]", MB), ("[^]", MB), ("[a", MB), ("[a-", MB), ("[a-z", MB), ("[^", MB), ("[", MB), ("[]a", MB),
    (r"[a\]", MB), (r"[a-\d]", ESC), (r"[\b]", ESC), (r"[\Q]\E]", ESC), (r"[\1]", ESC), (r"[\A]", ESC),
    (r"[\z]", ESC), ("[a\\", TB),
    # POSIX classes
    ("[[:alpha:]]", OK), ("[[:^alpha:]]", OK), ("[^[:digit:]]", OK), ("[[:alnum:][:space:]_]", OK),
    ("[[:word:]]", OK), ("[[:xdigit:]]", OK), ("[[:ascii:]]", OK), ("[[:blank:]]", OK), ("[[:cntrl:]]", OK),
    ("[[:graph:]]", OK), ("[[:lower:]]", OK), ("[[:print:]]", OK), ("[[:punct:]]", OK),
    ("[[:upper:]]", OK), ("[[:alpha]]", OK), ("[[:]]", OK), ("[[=a=]]", OK), ("[[.a.]]", OK),
    ("[:alpha:]", OK), ("[a-z&&b]", OK),
    ("[[:foo:]]", RANGE), ("[[:Alpha:]]", RANGE), ("[[:^foo:]]", RANGE), ("[[:a]b:]]", RANGE),
    ("[[:alpha:]", MB), ("[[: alpha:]]", RANGE),
    # Unicode classes
    (r"\pL", OK), (r"\pN", OK), (r"\PL", OK), (r"\pl", OK), (r"\p{L}", OK), (r"\p{Greek}", OK),
    (r"\P{Greek}", OK), (r"\p{^Greek}", OK), (r"\P{^L}", OK), (r"\p{latin}", OK), (r"\p{ Latin }", OK),
    (r"\p{Letter}", OK), (r"\p{Upper_case-Letter}", OK), (r"\p{Any}", OK), (r"\p{ASCII}", OK),
    (r"\p{Assigned}", OK), (r"\p{LC}", OK), (r"\p{Cn}", OK), (r"[\pL]", OK), (r"[^\P{Greek}]", OK),
    (r"[\p{Han}a-z]", OK), (r"\pL+", OK), (r"(?i)\pL+[[:digit:]]\z", OK),
    (r"\p{Foo}", RANGE), (r"\pX", RANGE), (r"\p{}", RANGE), (r"\p", RANGE), (r"\p{L", RANGE),
    (r"\p{^}", RANGE), (r"[\p{Foo}]", RANGE), (r"\p^L", RANGE), (r"\p{Greek", RANGE), (r"\pé", RANGE),
    (r"\p{IsGreek}", RANGE), (r"\p{Script=Greek}", RANGE),
    # mixed, as target_regex values are written
    (r".*\.dcm", OK), (r"(?i).*\.(nii|nii\.gz)", OK), (r"[^/]+/[^/]+\.json", OK), (r"series-\d{3}/.*", OK),
    (r"(?P<series>[0-9]+)/slice_\d+\.dcm", OK), (r"^a$", OK), (r"(?s)a.b", OK),
]  # fmt: skip
TABLE += [
    ("((){1000}){2}", SIZE), ("(()){1000}", OK), ("((?:){1000}){2}", SIZE), ("((a{500}){0,}){3}", SIZE),
    ("(a{1000}){0,}", OK), ("(ab{500}){3}", SIZE), ("((?i)a{500}){2}", OK), ("(a{500}(?i)){3}", SIZE),
]  # fmt: skip

# Pieces random expressions are made of: every construct, whole and broken.
_PIECES = [
    "a", "b", "é", ".", "^", "$", "|", "(", ")", "(?:", "(?i)", "(?i:", "(?P<n>", "(?<m>", "(?", "[", "]", "[^",
    "-", "*", "+", "?", "{", "}", "{2}", "{2,}", "{2,3}", "{0}", "{1001}", "{,2}", ",", "\\", "\\Q", "\\E",
    "\\p", "\\pL", "\\p{", "\\p{Greek}", "\\P{^L}", "\\d", "\\1", "\\0", "\\x", "\\x{", "\\x41", "[:",
    ":]", "[:alpha:]", "[[:digit:]]", "\\b", "\\z", "\\A", "\\-", "\\]", "0", "1", "9", "{500}", "{3}", "s",
    "U", ":", "<", ">", "P", "=", "!", " ", "_", "\\a", "\\v",
]  # fmt: skip
_RANDOM = 1500

_SYNTAX = "does not compile (Go RE2 syntax): "
_CHANNELS = 64  # [limits] max_channels: the most inputs of one template


def _verdict(expr: str) -> str:
    try:
        _regex.check_syntax(expr)
    except _regex.RegexError as e:
        return e.code
    try:
        _regex.check_syntax("^(?:" + expr + ")$")
    except _regex.RegexError:
        return WRAP
    return OK


def _pc(exprs: list[str]) -> dict[str, Any]:
    """One processing-container.json whose inputs carry exprs as target_regex, in order."""
    templates = []
    for t in range(0, len(exprs), _CHANNELS):
        inputs = [
            {
                "name": f"in{j}",
                "mounted_path": f"/in{j}",
                "scale_rule": {"scale_factor": 2, "type": "limit", "mode": "sum", "target_regex": e},
            }
            for j, e in enumerate(exprs[t : t + _CHANNELS])
        ]
        templates.append(
            {
                "identifier": f"t{t}",
                "description": "d",
                "env": [],
                "inputs": inputs,
                "outputs": [{"name": "out", "mounted_path": "/out"}],
            }
        )
    return {"name": "regexes", "description": "d", "api_version": 1, "templates": templates}


def _go_problems(cli: Path, tmp: Path, exprs: list[str]) -> list[str | None]:
    """What pcnode-cli validate says of each expression's target_regex: the problem text, or None."""
    doc = tmp / "regexes.json"
    doc.write_text(json.dumps(_pc(exprs)))
    res = subprocess.run(
        [str(cli), "validate", "--schema", "pc", "-o", "json", str(doc)], capture_output=True, text=True, check=False
    )
    assert res.returncode in (0, 1), res.stderr
    rep = json.loads(res.stdout)
    out: list[str | None] = [None] * len(exprs)
    for p in rep["problems"]:
        field = p["field"]
        assert field.endswith(".scale_rule.target_regex"), p
        ti = int(field.split("[", 2)[1].split("]")[0])
        ji = int(field.split("inputs[", 1)[1].split("]")[0])
        k = ti * _CHANNELS + ji
        assert out[k] is None, (field, out[k], p)
        out[k] = p["description"]
    return out


def _go_verdict(problem: str | None) -> str:
    if problem is None or problem.endswith("([limits] max_regex_insts)"):
        return OK  # the program size is the node's to check, not a syntax verdict
    assert problem.startswith(_SYNTAX), problem
    code = problem.removeprefix(_SYNTAX)
    if code.startswith("error parsing regexp: "):
        return WRAP
    return code.split(': "', 1)[0]


def test_table_is_large_and_covers_every_verdict() -> None:
    assert len(TABLE) >= 150
    verdicts = {v for _, v in TABLE}
    assert verdicts == {OK, WRAP, MP, UP, MB, MRA, NEST, SIZE, ESC, TB, RANGE, PERL, NAMED}
    assert len({e for e, _ in TABLE}) == len(TABLE), "an expression is listed twice"


@pytest.mark.parametrize(("expr", "want"), TABLE, ids=[repr(e) for e, _ in TABLE])
def test_python_verdict(expr: str, want: str) -> None:
    assert _verdict(expr) == want


def test_go_verdict_and_text(pcnode_cli: Path, tmp_path: Path) -> None:
    exprs = [e for e, _ in TABLE]
    got = _go_problems(pcnode_cli, tmp_path, exprs)
    wrong = [(e, want, _go_verdict(g)) for (e, want), g in zip(TABLE, got, strict=True) if _go_verdict(g) != want]
    assert not wrong, f"Go disagrees with the table (expr, table, Go): {wrong}"
    texts = [
        (e, g, target_regex_problem(e, Limits()))
        for e, g in zip(exprs, got, strict=True)
        if _go_verdict(g) != OK and target_regex_problem(e, Limits()) != g
    ]
    assert not texts, f"problem texts differ (expr, Go, Python): {texts}"


def test_random_expressions_as_go(pcnode_cli: Path, tmp_path: Path) -> None:
    """Seeded random expressions (the same every run) of whole and broken constructs: Go's verdict and text."""
    rng = random.Random(20261201)
    exprs = sorted({"".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 8))) for _ in range(_RANDOM)})
    got = _go_problems(pcnode_cli, tmp_path, exprs)
    wrong = [(e, g, target_regex_problem(e, Limits())) for e, g in zip(exprs, got, strict=True)]
    wrong = [w for w in wrong if _go_verdict(w[1]) != _verdict(w[0]) or (_go_verdict(w[1]) != OK and w[1] != w[2])]
    assert not wrong, f"{len(wrong)} of {len(exprs)} differ (expr, Go, Python): {wrong[:10]}"
    verdicts = {_verdict(e) for e in exprs}
    assert len(verdicts) >= 10, verdicts  # the mix reaches most of the grammar


def test_every_unicode_name_as_go_reads_it(pcnode_cli: Path, tmp_path: Path) -> None:
    """Every name of the table Python keeps is one Go accepts, in braces; near misses are refused by both."""
    names = sorted(_regex._UNICODE)
    assert len(names) >= 190
    exprs = [r"\p{" + n + "}" for n in names] + [r"\P{^" + n.upper() + "}" for n in names[:40]]
    misses = [r"\p{" + n + "x}" for n in names[:40]] + [r"\p{Is" + n + "}" for n in names[40:60]]
    got = _go_problems(pcnode_cli, tmp_path, exprs + misses)
    accepted = [e for e, g in zip(exprs, got, strict=False) if g is not None]
    assert not accepted, f"Go refuses: {accepted}"
    for e, g in zip(misses, got[len(exprs) :], strict=True):
        py = target_regex_problem(e, Limits())
        if e.removeprefix(r"\p{").removesuffix("}").lower() in _regex._UNICODE:
            assert g is None, e  # a name plus "x" that is a name itself
            assert py is None, e
        else:
            assert g is not None, e
            assert py == g, (e, g, py)


def test_byte_cap_before_syntax() -> None:
    assert target_regex_problem("(" * 1025, Limits()) == "is 1025 bytes; at most 1024 ([limits] max_regex_bytes)"
    assert target_regex_problem("é" * 513, Limits()) == "is 1026 bytes; at most 1024 ([limits] max_regex_bytes)"
    assert target_regex_problem("(" * 1025, Limits(max_pattern_bytes=0)) == (
        "does not compile (Go RE2 syntax): missing closing ): " + '"' + "(" * 40 + '..."'
    )
    assert target_regex_problem("", Limits()) is None  # the daemon reads "" as ".*"


def test_program_size_is_left_to_the_node() -> None:
    """Python checks syntax only: what compiles to more than max_regex_insts instructions passes here."""
    assert target_regex_problem("(abc){700}", Limits()) is None
    assert target_regex_problem("x{1000}y{1000}z{1000}", Limits(max_regex_insts=10)) is None


def test_hostile_expressions_without_a_byte_cap() -> None:
    """No recursion and no huge int conversion: deep nesting and long counts are read in one pass."""
    uncapped = Limits(max_pattern_bytes=0)
    assert target_regex_problem("a{" + "9" * 10000 + "}", uncapped) == (
        "does not compile (Go RE2 syntax): invalid repeat count: " + '"{' + "9" * 39 + '..."'
    )
    assert target_regex_problem("a{12345678}", uncapped) == (
        'does not compile (Go RE2 syntax): invalid repeat count: "{12345678}"'
    )
    # Go's nesting-depth limit is the node's (unreachable under the default byte cap): Python reads it through.
    assert target_regex_problem("(" * 50000 + ")" * 50000, uncapped) is None
    assert target_regex_problem("(" * 50000, uncapped) == (
        'does not compile (Go RE2 syntax): missing closing ): "' + "(" * 40 + '..."'
    )
