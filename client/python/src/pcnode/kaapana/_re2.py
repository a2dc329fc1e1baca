"""target_regex: Go RE2 syntax and size limits (daemon/spec/limits.go,
compileTargetRegexWithin). Interim: checks the length and Python's reading of
the syntax, refusing the constructs RE2 lacks."""

from __future__ import annotations

import re
from typing import Optional

from pcnode.kaapana._spec import Limits, blen

_UNSUPPORTED = re.compile(r"\(\?[=!]|\(\?<[=!]|\(\?>|\\[1-9]|\(\?#|[*+?}][+]")


def target_regex_problem(expr: str, limits: Limits) -> Optional[str]:
    if limits.max_pattern_bytes > 0 and blen(expr) > limits.max_pattern_bytes:
        return f"is {blen(expr)} bytes; at most {limits.max_pattern_bytes} ([limits] max_regex_bytes)"
    if expr == "":
        return None
    if _UNSUPPORTED.search(expr):
        return "does not compile (Go RE2 syntax): invalid or unsupported Perl syntax"
    try:
        re.compile(expr)
    except re.error as e:
        return f"does not compile (Go RE2 syntax): {e}"
    return None
